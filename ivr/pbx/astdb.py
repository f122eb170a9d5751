"""Asterisk's AstDB as the service uses it, through AMI: the alert calls' journal and the
quota flags.

- The journal (family `ivr`, key = attempt id): the alert dialplan writes what the callee did
  (A, K1, K1E<minutes>, K2, T, V, Q, F<reason>; `ivr/dialplans/ivr-alert.conf`) before it
  tells the service, so an answer given while the AMI link is down is still known.
- Quota flags (family `ivr-quota`, key `<campaign uid>-<role>`): set when a role's quota is
  met, so calls already ringing for that role hear "enough staff have answered" instead of the
  question; removed when an operator raises the quota.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ivr.pbx.ami import AmiLink

#: AstDB family of the alert calls' journal.
JOURNAL_FAMILY = "ivr"
#: AstDB family of the quota flags.
QUOTA_FAMILY = "ivr-quota"
#: The campaign's uid in a key of each family: `<uid>-<role>` (`quota_flag`), and
#: `ivr-<uid>-<index>-<try>` (attempt ids, `ivr.campaign.scheduler.attempt_id`).
_CAMPAIGN_KEYS = {
    QUOTA_FAMILY: re.compile(r"([0-9a-f]{8})-.+"),
    JOURNAL_FAMILY: re.compile(r"ivr-([0-9a-f]{8})-\d+-\d+"),
}


def quota_flag(campaign_uid: str, role: str) -> str:
    """The AstDB key (and the `IVR_QUOTA` channel variable) of a role's quota in a campaign."""
    return f"{campaign_uid}-{role}"


class AstDb:
    """The journal and the quota flags of one Asterisk, over its AMI link."""

    def __init__(self, link: AmiLink) -> None:
        self.link = link

    async def journal(self) -> dict[str, str]:
        """Every attempt the dialplan journalled and nobody has forgotten yet."""
        return await self.entries(JOURNAL_FAMILY)

    async def campaigns(self) -> set[str]:
        """The uids of the campaigns that have a quota flag or a journal entry here."""
        found = set()
        for family, pattern in _CAMPAIGN_KEYS.items():
            for key in await self.entries(family):
                if match := pattern.fullmatch(key):
                    found.add(match[1])
        return found

    async def forget_campaigns(self, uids: Collection[str]) -> int:
        """Remove what ended campaigns left here: their quota flags, and the journal entries
        kept for outcomes no replica had acknowledged (README, "Two sites"). How many."""
        gone = 0
        for family, pattern in _CAMPAIGN_KEYS.items():
            for key in await self.entries(family):
                if (match := pattern.fullmatch(key)) and match[1] in uids:
                    await self.link.action({"Action": "DBDel", "Family": family, "Key": key})
                    gone += 1
        return gone

    async def entries(self, family: str) -> dict[str, str]:
        """Every key of `family` (its last path component) and its value."""
        reply = await self.link.action({"Action": "DBGetTree", "Family": family})
        entries: dict[str, str] = {}
        for message in reply if isinstance(reply, list) else []:
            if message.get("Event") == "DBGetTreeResponse":
                key = str(message.get("Key", "")).rsplit("/", 1)[-1]
                entries[key] = str(message.get("Val", ""))
        return entries

    async def journal_entry(self, attempt_id: str) -> str | None:
        """What the journal holds for one attempt, or None."""
        got = await self.link.action(
            {"Action": "DBGet", "Family": JOURNAL_FAMILY, "Key": attempt_id}
        )
        if not isinstance(got, list):
            return None
        return next((str(m.get("Val")) for m in got if m.get("Event") == "DBGetResponse"), None)

    async def forget(self, attempt_id: str) -> None:
        """Remove an attempt's journal entry, once its outcome is safely recorded elsewhere."""
        await self.link.action({"Action": "DBDel", "Family": JOURNAL_FAMILY, "Key": attempt_id})

    async def set_quota_met(self, flag: str) -> None:
        """Calls carrying `IVR_QUOTA=flag` now say "enough staff" instead of asking."""
        await self.link.action({"Action": "DBPut", "Family": QUOTA_FAMILY, "Key": flag, "Val": "1"})

    async def clear_quota_met(self, flag: str) -> None:
        """Calls carrying `IVR_QUOTA=flag` ask the question again (the quota was raised)."""
        await self.link.action({"Action": "DBDel", "Family": QUOTA_FAMILY, "Key": flag})
