"""The report and control line: after the PIN, a spoken summary of the running campaign (fresh
counts each time), then 1 repeat, 2 stop, 3 raise a quota (people the old quota cancelled are
called again) or extend the alert to its next group, 4 join the crisis-cell conference. Every
action is confirmed by voice and written to the audit log as `phone:<staff id>`.
"""

from __future__ import annotations

import logging
import time

from ivr import logs
from ivr.access import audit
from ivr.campaign import ops, store
from ivr.campaign import report as reports
from ivr.campaign.report import Report
from ivr.campaign.spec import CampaignError, Group
from ivr.lines.call import LineCall, LineContext
from ivr.lines.pin import authenticate
from ivr.pbx.agi import AgiSession
from ivr.staff.roster import RosterStore
from ivr.voice import speech

log = logging.getLogger(__name__)


class ReportLine:
    """The `report` flow."""

    def __init__(self, context: LineContext) -> None:
        self.context = context

    async def __call__(self, session: AgiSession) -> None:
        call = await self.context.start(session, "report")
        who = await authenticate(call)
        if who is None:
            return
        cid = await self._pick_campaign(call)
        if cid is None:
            await call.play(call.p("no_campaign"))
            key = await call.menu(call.p("report_menu_idle"), "4", "idle")
            if key == "4":
                await self._conference(call, who)
            return
        logs.bind(campaign_id=cid)  # this call's own task (ivr.pbx.agi)
        await self.control(call, cid, who)

    async def control(self, call: LineCall, cid: str, who: str | None, intro: str = "") -> None:
        """Campaign `cid`'s summary, made fresh each time, and the menu: 1 repeat, 2 stop,
        3 raise a quota or extend, 4 the crisis cell. `who` None: a call the service placed
        (the director's call-back, `ivr.lines.recall`), whose PIN is asked before the first
        key that does anything but repeat. `intro` is played before the first summary."""
        while True:
            report = await reports.report(self.context.redis, cid)
            summary = await call.say(
                speech.summary(
                    report, call.language, now=time.time(), role_labels=self._labels(call.language)
                )
            )
            menu = f"{summary}&{call.p('report_menu')}"
            key = await call.menu(f"{intro}&{menu}" if intro else menu, "1234", "report")
            intro = ""
            if key is None:
                await call.play(call.p("goodbye"))
                return
            if key == "1":
                continue
            if who is None:
                who = await authenticate(call, placed=True)
                if who is None:
                    return
            if key in "23" and not await call.vouched(f"change to campaign {cid} ({who})"):
                return
            if key == "2":
                if await self._stop(call, who, cid):
                    return
            elif key == "3":
                await self._change(call, who, cid, report)
            elif key == "4":
                await self._conference(call, who)
                return

    def _labels(self, language: str) -> dict[str, str]:
        return self.context.role_labels.get(language, {})

    async def _pick_campaign(self, call: LineCall) -> str | None:
        active = await store.active(self.context.redis)
        if not active:
            return None
        if len(active) == 1:
            return active[0]
        newest = list(reversed(active))[:9]
        names = [
            (cid, (await store.get_meta(self.context.redis, cid)).get("name", "")) for cid in newest
        ]
        menu = await call.say(speech.campaign_choice(names, call.language))
        key = await call.menu(menu, "".join(str(i) for i in range(1, len(names) + 1)), "campaign")
        return None if key is None else names[int(key) - 1][0]

    async def _stop(self, call: LineCall, who: str, cid: str) -> bool:
        key = await call.menu(call.p("stop_confirm"), "12", "stop_confirm")
        if key != "1":
            await call.play(call.p("not_stopped"))
            return False
        # Whoever stops it knows it ended: no call-back about it to the director if it is him,
        # nor to this phone.
        status = await store.stop(self.context.redis, cid, by=who, phone=call.session.caller_id)
        details = {"caller": call.session.caller_id, "status": status}
        await audit.record(
            self.context.redis, f"phone:{who}", "campaign.stop", target=cid, details=details
        )
        said = await call.say(speech.stopped(cid, call.language))
        await call.play(f"{said}&{call.p('goodbye')}")
        return True

    async def _change(self, call: LineCall, who: str, cid: str, report: Report) -> None:
        """Key 3: raise a quota, or extend the alert to its next group (asked if both)."""
        roles = [r for r, entry in report["by_role"].items() if entry.get("quota")]
        groups = await ops.groups_left(self.context.redis, cid)
        if roles and groups:
            key = await call.menu(call.p("change_menu"), "12", "change")
            if key is None:
                return
            roles, groups = (roles, []) if key == "1" else ([], groups)
        if roles:
            await self._raise_quota(call, who, cid, report, roles)
        elif groups:
            await self._extend(call, who, cid, groups[0])
        else:
            await call.play(call.p("no_quota_roles"))

    async def _extend(self, call: LineCall, who: str, cid: str, group: Group) -> None:
        people = await RosterStore(self.context.redis).load()
        count = await ops.newcomers(self.context.redis, cid, people, group)
        count_file = await call.say(speech.staff_to_call(count, call.language))
        key = await call.menu(f"{count_file}&{call.p('extend_confirm')}", "12", "extend_confirm")
        if key != "1":
            await call.play(call.p("not_extended"))
            return
        try:
            done = await ops.extend(self.context.redis, cid, people)
        except CampaignError as exc:
            log.warning("campaign %s not extended by phone: %s", cid, exc)
            await call.play(call.p("not_extended"))
            return
        await audit.record(self.context.redis, f"phone:{who}", "campaign.extend", target=cid,
                           details={"group": done.label, "added": done.added})  # fmt: skip
        await call.play(await call.say(speech.extended(done.added, call.language)))

    async def _raise_quota(
        self, call: LineCall, who: str, cid: str, report: Report, roles: list[str]
    ) -> None:
        role = roles[0]
        labels = self._labels(call.language)
        if len(roles) > 1:
            roles = roles[:9]
            choices = [(str(i + 1), labels.get(r, r)) for i, r in enumerate(roles)]
            menu = await call.say(speech.role_menu(choices, call.language))
            key = await call.menu(menu, "".join(k for k, _ in choices), "quota_role")
            if key is None:
                return
            role = roles[int(key) - 1]
        current = int(report["by_role"][role]["quota"])
        asked = await call.say(speech.quota_now(labels.get(role, role), current, call.language))
        got = await call.digits(
            f"{asked}&{call.p('quota_enter')}", "quota", accept=lambda d: 0 < int(d) <= 100_000
        )
        if got is None:
            return
        if int(got) <= current:
            await call.play(call.p("quota_too_low"))
            return
        try:
            await ops.raise_quota(self.context.redis, cid, role, int(got))
        except CampaignError as exc:
            log.warning("quota not raised by phone: %s", exc)
            await call.play(call.p("not_understood"))
            return
        await audit.record(self.context.redis, f"phone:{who}", "campaign.quota", target=cid,
                           details={"role": role, "quota": int(got), "old": current})  # fmt: skip
        said = await call.say(speech.quota_now(labels.get(role, role), int(got), call.language))
        await call.play(said)

    async def _conference(self, call: LineCall, who: str) -> None:
        await audit.record(self.context.redis, f"phone:{who}", "conference.join", target="crisis")
        await call.play(call.p("conference"))
        await call.session.set_variable("IVR_NEXT", "conf")
