"""Facts read together: one round trip for many facts, reused while the host is unchanged.

pyinfra 3 reads every fact with a command of its own, and a re-run of vpskit
mostly checks files and units that have not changed. Operations decorated with
``planned`` say, when the deploy is built, which facts they will read; the first
of them to run reads every planned fact in one command (``snapshot_fact``).

A value read that way is only used while no operation of this run has changed
the host. After the first change each fact is read on its own again, exactly as
``host.get_fact`` would: a first deploy checks as before, a re-run that changes
nothing reads all planned facts in one round trip.
"""

from __future__ import annotations

import functools

from pyinfra import host, state
from pyinfra.api import FactBase

_MARK = "##vpskit-fact"


def _key(cls: type[FactBase], kwargs: dict) -> tuple:
    return cls, tuple(sorted(kwargs.items()))


class Wanted(tuple):
    """The facts one ``Facts`` read covers; pyinfra's log names them by count."""

    def __str__(self) -> str:
        return f"{len(self)} facts"


class Facts(FactBase):
    """
    Returns the values of several facts read by one command, by position; a fact whose command failed is left out.

    .. code:: python

        host.get_fact(Facts, facts=((FileState, (("path", "/etc/x"),)), ...))  # {0: {...}, ...}
    """

    _facts: tuple = ()

    def command(self, facts):
        # pyinfra calls command() and then process() on one instance: keep what is read.
        self._facts = facts
        parts = []
        for i, (cls, kwargs) in enumerate(facts):
            fact, kw = cls(), dict(kwargs)
            command = fact.command(**kw) if callable(fact.command) else fact.command
            requires = fact.requires_command(**kw) if callable(fact.requires_command) else fact.requires_command
            run = f"( {command}\n); echo '{_MARK} status' $?"
            if requires:
                run = f"if command -v {requires} >/dev/null 2>&1; then {run}; else echo '{_MARK} missing'; fi"
            parts.append(f"echo '{_MARK} {i}'; {run}")
        return "\n".join(parts)

    def process(self, output):
        return parse_facts(output, self._facts)


def parse_facts(lines: list[str], facts) -> dict[int, object]:
    """Each fact's value from the combined output; a failed command leaves its fact out."""
    chunks: dict[int, list[str]] = {}
    status: dict[int, str] = {}
    current = None
    for line in lines:
        if line.startswith(_MARK + " "):
            word = line[len(_MARK) + 1 :].split()
            if word[0].isdigit():
                current = int(word[0])
                chunks[current] = []
            elif current is not None:
                status[current] = word[0] if word[0] == "missing" else word[1] if len(word) > 1 else "1"
        elif current is not None:
            chunks[current].append(line)
    values = {}
    for i, (cls, _kwargs) in enumerate(facts):
        if status.get(i) == "missing" or (status.get(i) == "0" and not chunks.get(i)):
            values[i] = cls().default()
        elif status.get(i) == "0":
            values[i] = cls().process(chunks[i])
    return values


# ------------------------------------------------------------------ the cache


class _Run:
    """What one run of one host planned and read."""

    def __init__(self):
        self.planned: dict[tuple, None] = {}  # ordered set
        self.values: dict[tuple, object] = {}


_runs: dict[tuple[int, str], _Run] = {}


def _run() -> _Run:
    return _runs.setdefault((id(state._get_module()), host.name), _Run())


def changes_so_far() -> int:
    """Operations of this run that have executed commands on the host."""
    ops = state.ops.get(host, {})
    return sum(1 for d in ops.values() if d.operation_meta.is_complete() and d.operation_meta.did_change())


def plan(cls: type[FactBase], **kwargs) -> None:
    """Note that an operation of this run will read ``cls(**kwargs)``."""
    _run().planned.setdefault(_key(cls, kwargs), None)


def snapshot_fact(cls: type[FactBase], **kwargs):
    """
    ``host.get_fact(cls, **kwargs)``, read with every other planned fact while the host is unchanged.

    + cls: the fact class
    + kwargs: the fact's arguments (hashable values)

    **Example:**

    .. code:: python

        current = snapshot_fact(FileState, path="/etc/vpskit/health.json")
    """
    run = _run()
    key = _key(cls, kwargs)
    if changes_so_far():
        return host.get_fact(cls, **kwargs)
    if key not in run.values:
        wanted = [k for k in run.planned if k not in run.values]
        if key not in wanted:
            wanted.append(key)
        read = host.get_fact(Facts, facts=Wanted(wanted))
        for i, k in enumerate(wanted):
            if i in read:
                run.values[k] = read[i]
        if key not in run.values:
            return host.get_fact(cls, **kwargs)
    return run.values[key]


def planned(facts_of):
    """
    Decorate an operation so that calling it plans the facts ``facts_of(*args, **kwargs)`` lists.

    + facts_of: function of the operation's arguments returning ``[(FactClass, {kwargs}), ...]``

    **Example:**

    .. code:: python

        @planned(lambda dest, **_: [(FileState, {"path": dest})])
        @operation()
        def checked_file(dest, content, ...): ...
    """

    def wrap(op):
        @functools.wraps(op)
        def call(*args, **kwargs):
            for cls, kw in facts_of(*args, **kwargs):
                plan(cls, **kw)
            return op(*args, **kwargs)

        call._inner = op._inner
        return call

    return wrap
