"""One redaction of secrets for every printer and logger of the service.

The AMI secret, the password of the Redis URL and API tokens must never reach a terminal, a
log file or a log collector. `load_config` registers the configured secrets here; the log
handlers (`ivr.logs`) and the command line's error printer pass what they write through
`redact()`, which also masks a token given in a URL's query (`?token=...`).
"""

from __future__ import annotations

import logging
import re
import urllib.parse

#: What a secret is replaced with.
MASK = "***"
#: Shorter values are not treated as secrets (a one-letter test password would mask every
#: occurrence of that letter).
MIN_SECRET = 4
_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&\s])(?:token|ticket|password|secret)=)[^&\s\"']+", re.I)
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secret values: from now on `redact()` masks them wherever they appear (as
    given, and as they read once percent-decoded, as in a URL)."""
    for value in values:
        if value and len(value) >= MIN_SECRET:
            _secrets.update({value, urllib.parse.unquote(value)})


def url_password(url: str) -> str | None:
    """The password a Redis URL carries (in its authority or as `?password=`), if any."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    return parts.password or query.get("password")


def safe_url(url: str) -> str:
    """The URL with its password, if any, shown as `***` (for messages and `ivr config`)."""
    # urllib's parser, as redis-py's own: a password holding '@' or ':' is hidden whole, and
    # so is one given as `?password=` (redis-py takes it there too).
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        url = url.replace(parts.netloc, f"{parts.username or ''}:{MASK}@{host}", 1)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        hidden = [(key, MASK if key == "password" else value) for key, value in query]
        url = f"{url.partition('?')[0]}?{urllib.parse.urlencode(hidden, safe='*')}"
    return url


def redact(text: str) -> str:
    """`text` with every registered secret and every `token=` in a query masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _TOKEN_IN_QUERY.sub(rf"\1{MASK}", text)


class RedactFilter(logging.Filter):
    """Masks secrets in a record's message (arguments folded in) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
