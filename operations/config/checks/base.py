"""What every section's checks share: the problem collector and the value tests they use."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from ..calendar import is_calendar
from ..model import Config
from ..stack import CALENDAR, CALENDAR_EXPECT

# An absolute path of plain characters, safe in a shell line and a systemd unit.
SAFE_PATH_RE = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
KEY_PREFIXES = ("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com ", "sk-ecdsa-sha2-")
CRON_FIELD_RE = re.compile(r"^[A-Za-z0-9*/,-]+$")
# The characters a package source's URL may hold: RFC 3986's, less quotes (it reaches shell lines and apt.conf).
URL_RE = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+")
CRON_KEYWORDS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def is_domain(name: str) -> bool:
    """A fully qualified DNS name (at least two labels, letters/digits/hyphens)."""
    if not isinstance(name, str) or len(name) > 253 or "." not in name:
        return False
    labels = name.lower().rstrip(".").split(".")
    if labels[-1].isdigit():
        return False
    return all(HOSTNAME_LABEL_RE.match(label) for label in labels)


def is_port(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_host(name: str) -> bool:
    """An IP address or a host name of one or more labels (``apt-cache``, ``mirror.example.com``)."""
    return is_ip(name) or bool(name) and all(HOSTNAME_LABEL_RE.match(label) for label in name.rstrip(".").split("."))


def url_problem(value: str, address_only: bool = False) -> str | None:
    """What is wrong with the http(s) URL of a package source, or None; ``address_only``: no path beyond "/" (a proxy)."""
    if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
        # Said first, and without the value: it holds a password.
        return "must not hold a user or password: the host keeps it where other users can read it"
    if not URL_RE.fullmatch(value):
        return f"must be a URL of plain characters (no spaces, quotes, $, backslashes or line breaks), got {value!r}"
    if not value.startswith(("http://", "https://")):
        return f"must start with http:// or https://, got {value!r}"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return f"is not a valid URL (host or port), got {value!r}"
    if not is_host(parts.hostname or ""):
        return f"names no valid host, got {value!r}"
    if port == 0:
        return f"must have a port 1-65535, got {value!r}"
    if address_only and (parts.path not in ("", "/") or "?" in value or "#" in value):
        return f"must be the proxy's address only (scheme, host, optional port), got {value!r}"
    return None


def relative_path(value: str) -> bool:
    """A path inside the repo: relative, and not climbing out of it."""
    return not value.startswith("/") and ".." not in Path(value).parts


def is_cron_schedule(schedule: str) -> bool:
    """Five cron time fields (numbers, ranges, steps, lists, names) or one @keyword."""
    if schedule in CRON_KEYWORDS:
        return True
    parts = schedule.split()
    return len(parts) == 5 and all(CRON_FIELD_RE.match(p) for p in parts)


class Checker:
    """Collects problems as ``field.path: what is wrong`` lines."""

    def __init__(self, config: Config):
        self.config = config
        self.problems: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def network(self, where: str, value: str) -> None:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.add(where, f"{value!r} is not an IP address or network")

    def unique(self, where: str, value: str, seen: dict[str, str], owner: str) -> None:
        """``value`` must not be in ``seen``, where it is recorded as ``owner``'s."""
        if value in seen:
            self.add(where, f"{value!r} is already used by {seen[value]}")
        seen.setdefault(value, owner)

    def calendar(self, where: str, value: str) -> None:
        """A systemd OnCalendar expression (``calendar.is_calendar``; the host's systemd-analyze checks it again)."""
        if not re.match("^" + CALENDAR, value) or not is_calendar(value):
            self.add(where, f"{value!r} is not {CALENDAR_EXPECT}")

    def key_file(self, where: str, path: str, public: bool) -> None:
        p = self.config.path(path)
        if not p.is_file():
            self.add(where, f"file {str(p)!r} does not exist")
            return
        if public:
            # Blank and # comment lines are allowed, as Config.public_keys() skips them.
            lines = [ln for ln in p.read_text(errors="replace").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            if not lines or not all(ln.strip().startswith(KEY_PREFIXES) for ln in lines):
                self.add(where, f"file {str(p)!r} is not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA...')")
        elif "PRIVATE KEY" not in p.read_text(errors="replace")[:200]:
            self.add(where, f"file {str(p)!r} is not a private key")
