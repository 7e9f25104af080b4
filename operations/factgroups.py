"""Facts of one kind read by one command: many files' states in one ``sha256sum``, many units' in one ``systemctl show``.

A run's snapshot (``operations.snapshot``) reads all its facts in one round trip,
but each fact still starts processes of its own on the host: a re-run reads some
60 files and 25 units, and those processes were most of the snapshot's time. A
group reads all its members with one command and hands each member the lines its
own command would have printed, so the member's ``process`` gives the same value.
Output that does not line up with the members leaves them all out: each is then
read again on its own, as if no group existed.
"""

from __future__ import annotations

import re
import shlex

from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from .facts import FileState

_HASH = re.compile(r"^\\?([0-9a-f]{64})$")


class FactGroup:
    """How one kind of fact is read for many members at once; a member is ``(fact class, kwargs dict)``."""

    requires = ""  # a command the group needs (missing: each member gets its fact's default)

    def accepts(self, cls: type, kwargs: dict) -> bool:
        raise NotImplementedError

    def command(self, members: list[tuple[type, dict]]) -> str:
        raise NotImplementedError

    def split(self, lines: list[str], members: list[tuple[type, dict]]) -> list[list[str]] | None:
        """Each member's lines, as its own command prints them; None when ``lines`` do not line up."""
        raise NotImplementedError


class FileStates(FactGroup):
    """``FileState`` of many paths: which are regular files, then one sha256sum and one stat over those."""

    def accepts(self, cls, kwargs):
        return cls is FileState and set(kwargs) == {"path"} and isinstance(kwargs["path"], str)

    def command(self, members):
        # Positions, not names, tie the answers to the members: sha256sum escapes some names it prints.
        pairs = " ".join(shlex.quote(f"{n}:{kw['path']}") for n, (_, kw) in enumerate(members))
        return (
            f'set --; present=; for x in {pairs}; do if [ -f "${{x#*:}}" ]; then set -- "$@" "${{x#*:}}"; present="$present ${{x%%:*}}"; fi; done\n'
            'echo "present$present"\n'
            "if [ $# -gt 0 ]; then sha256sum -- \"$@\" | cut -d' ' -f1 && stat -c '%a %U %G' -- \"$@\"; fi"
        )

    def split(self, lines, members):
        if not lines or not lines[0].startswith("present"):
            return None
        present = [int(n) for n in lines[0].split()[1:]]
        hashes = [_HASH.match(h) for h in lines[1 : 1 + len(present)]]
        stats = lines[1 + len(present) :]
        if len(hashes) != len(present) or len(stats) != len(present) or not all(hashes):
            return None  # a file that could not be read: each is read on its own
        out: list[list[str]] = [[] for _ in members]
        for n, digest, stat in zip(present, hashes, stats, strict=True):
            out[n] = [digest.group(1), stat]
        return out


class SystemdUnits(FactGroup):
    """pyinfra's ``SystemdStatus`` and ``SystemdEnabled`` of named units: one ``systemctl show`` of all of them."""

    requires = "systemctl"

    def accepts(self, cls, kwargs):
        if cls not in (SystemdStatus, SystemdEnabled) or set(kwargs) != {"services"}:
            return False
        units = kwargs["services"]
        # A pattern lists what it matches, not one block: such a fact is read on its own.
        return isinstance(units, tuple) and bool(units) and all(isinstance(u, str) and not set(u) & set("*?[") for u in units)

    @staticmethod
    def _units(members) -> list[str]:
        return list(dict.fromkeys(u for _, kw in members for u in kw["services"]))

    def command(self, members):
        units = " ".join(shlex.quote(u) for u in self._units(members))
        return f"systemctl show --all --property Id --property SubState --property UnitFileState {units}"

    def split(self, lines, members):
        # One block per unit named, in the order named, blank lines between them.
        blocks: list[list[str]] = [[]]
        for line in lines:
            if line.strip():
                blocks[-1].append(line)
            elif blocks[-1]:
                blocks.append([])
        blocks = [b for b in blocks if b]
        units = self._units(members)
        if len(blocks) != len(units):
            return None
        by_unit = dict(zip(units, blocks, strict=True))
        return [[line for u in kw["services"] for line in [*by_unit[u], ""]] for _, kw in members]


GROUPS: tuple[FactGroup, ...] = (FileStates(), SystemdUnits())


def group_of(cls: type, kwargs: dict) -> FactGroup | None:
    """The group that reads ``cls(**kwargs)`` with others of its kind, if any."""
    return next((g for g in GROUPS if g.accepts(cls, kwargs)), None)
