"""The controller's known_hosts kept in step with a host whose host keys vpskit changes.

pyinfra checks the host key with paramiko, which prefers the key type listed FIRST for a
host name and fails with "host key changed" when that type's key differs, or when the host
no longer offers that type at all. After sshd's RSA key is replaced (or its ECDSA key no
longer offered), the stale lines for the host are dropped and the keys it offers now are
added, ed25519 first: the ed25519 key never changes, so a run killed between the key change
and this update still gets in. Only names the file already knows are touched, plain or
hashed (``HashKnownHosts``); other hosts' lines and ``@cert-authority`` lines stay as they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# Key types by preference: the key vpskit never changes comes first.
PREFERRED = ("ssh-ed25519",)


def host_name(address: str, port: int) -> str:
    """The name OpenSSH and paramiko file a host under: ``address``, or ``[address]:port`` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def _matches(field: str, name: str) -> bool:
    if field.startswith("|1|"):
        try:
            _, _, salt, digest = field.split("|")
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
        except ValueError:
            return False
        return base64.b64encode(mac).decode() == digest
    return name in field.split(",")


def names_in_line(line: str, names) -> set[str]:
    """Which of ``names`` a known_hosts line is for (none for comments and marker lines)."""
    parts = line.split()
    if len(parts) < 3 or parts[0].startswith(("#", "@")):
        return set()
    return {n for n in names if _matches(parts[0], n)}


def refreshed(text: str, names, keys: dict[str, str], add: bool = True) -> str:
    """``text`` with the lines for ``names`` made to match ``keys`` ({key type: base64 key}, what the host offers).

    A line for one of the names whose key type is not offered or whose key differs goes;
    with ``add``, each name that had a line gets a line for every offered key it lacks,
    preferred type first (without, a name left with no line is learnt anew on the next login).
    """
    lines = text.splitlines()
    kept: list[str] = []
    have: dict[str, set[str]] = {}
    for line in lines:
        mine = names_in_line(line, names)
        if not mine:
            kept.append(line)
            continue
        key_type, key = line.split()[1:3]
        for n in mine:
            have.setdefault(n, set())
        if keys.get(key_type) != key:
            continue
        kept.append(line)
        for n in mine:
            have[n].add(key_type)
    order = sorted(keys, key=lambda t: (t not in PREFERRED, t))
    for n in names if add else ():
        if n in have:
            kept += [f"{n} {t} {keys[t]}" for t in order if t not in have[n]]
    out = "\n".join(kept)
    return out + "\n" if out else ""
