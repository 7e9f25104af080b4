"""Facts read together: one round trip for many facts, reused while the host is unchanged.

pyinfra 3 reads every fact with a command of its own, and a re-run of vpskit
mostly checks files and units that have not changed. Operations decorated with
``planned`` say, when the deploy is built, which facts they will read; the first
of them to run reads every planned fact in one command (``snapshot_fact``).

Some facts are read while the deploy is still being built (a step that asks
whether another will change, a decision made before any operation runs), before
the later steps have planned theirs. So the facts a run asked for are remembered
for the next run of the same host (``.vpskit-facts.json`` beside its vpskit config;
which facts, never their values), and the first read of the next run reads them
all: a re-run that changes nothing reads its facts in one round trip.

A value read that way is only used while no operation of this run has changed the
host since it was read. After a change, the next fact asked for is read again with
every fact still to come, in one command: a run that changes one app reads its facts
in a round trip per change, not one per fact. After ``REREADS`` such reads (a run that
changes much, like a first deploy) each fact is read on its own, exactly as
``host.get_fact`` would. A fact marked ``slow = True`` (it asks another machine: a git
remote, the off-host repository) is read again only when it is asked for. A remembered fact that this run does not need costs only its
share of each command that reads it.
"""

from __future__ import annotations

import ast
import atexit
import functools
import importlib
import json
from pathlib import Path

from pyinfra import host, state
from pyinfra.api import FactBase, operation

from .factgroups import FactGroup, group_of

_MARK = "##vpskit-fact"
_GROUP_MARK = "##vpskit-group"


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
    _groups: tuple = ()

    def command(self, facts):
        # pyinfra calls command() and then process() on one instance: keep what is read, and
        # each fact's own instance (some keep what their command() saw for their process()).
        self._facts = tuple((cls(), kwargs) for cls, kwargs in facts)
        grouped: dict[FactGroup, list[int]] = {}
        parts = []
        for i, (fact, kwargs) in enumerate(self._facts):
            kw = dict(kwargs)
            group = group_of(type(fact), kw)
            if group is not None:
                grouped.setdefault(group, []).append(i)
                continue
            command = fact.command(**kw) if callable(fact.command) else fact.command
            requires = fact.requires_command(**kw) if callable(fact.requires_command) else fact.requires_command
            parts.append(f"echo '{_MARK} {i}'; {_checked(command, requires)}")
        # Each group with its members' positions and (class, kwargs): what its command and split are given.
        self._groups = tuple((g, pos, [(type(self._facts[i][0]), dict(self._facts[i][1])) for i in pos]) for g, pos in grouped.items())
        for n, (group, _, members) in enumerate(self._groups):
            parts.append(f"echo '{_GROUP_MARK} {n}'; {_checked(group.command(members), group.requires)}")
        return in_two_streams(parts)

    def process(self, output):
        return parse_facts(output, self._facts, self._groups)


def in_two_streams(parts: list[str]) -> str:
    """Shell running ``parts`` as two streams at once (every other part in each), printing the first stream's output, then the second's.

    Reading facts is mostly starting short processes: on a host with two cores or more
    the two streams take about half the time. Where no temporary directory can be made,
    the streams run one after the other.
    """
    if len(parts) < 2:
        return "\n".join(parts)
    first, second = "\n".join(parts[0::2]), "\n".join(parts[1::2])
    return (
        f"vpskit_facts_a() {{\n{first}\n}}\nvpskit_facts_b() {{\n{second}\n}}\n"
        'if d=$(mktemp -d 2>/dev/null); then vpskit_facts_a > "$d/a" & vpskit_facts_b > "$d/b"; wait; cat "$d/a" "$d/b"; rm -rf "$d"; '
        "else vpskit_facts_a; vpskit_facts_b; fi"
    )


def _checked(command, requires: str | None) -> str:
    """``command`` run in a subshell and followed by its status, or ``missing`` when ``requires`` is not installed."""
    run = f"( {command}\n); echo '{_MARK} status' $?"
    if requires:
        run = f"if command -v {requires} >/dev/null 2>&1; then {run}; else echo '{_MARK} missing'; fi"
    return run


def parse_facts(lines: list[str], facts, groups=()) -> dict[int, object]:
    """Each fact's value from the combined output (``facts``: (fact class or instance, kwargs); ``groups``: (FactGroup, fact positions, members)); a failed command leaves its fact out."""
    chunks: dict = {}
    status: dict = {}
    current = None
    for line in lines:
        if line.startswith(_GROUP_MARK + " "):
            current = ("group", int(line.split()[1]))
            chunks[current] = []
        elif line.startswith(_MARK + " "):
            word = line[len(_MARK) + 1 :].split()
            if word[0].isdigit():
                current = int(word[0])
                chunks[current] = []
            elif current is not None:
                status[current] = word[0] if word[0] == "missing" else word[1] if len(word) > 1 else "1"
        elif current is not None:
            chunks[current].append(line)
    # A group's answer becomes its members' own: their lines and status, as if each had run alone.
    for n, (group, positions, members) in enumerate(groups):
        said = status.get(("group", n))
        split = group.split(chunks[("group", n)], members) if said == "0" else None
        for pos, i in enumerate(positions):
            if said == "missing":
                status[i] = "missing"
            elif split is not None:
                chunks[i], status[i] = split[pos], "0"
    values = {}
    for i, (fact, _kwargs) in enumerate(facts):
        fact = fact() if isinstance(fact, type) else fact
        if status.get(i) == "missing" or (status.get(i) == "0" and not chunks.get(i)):
            values[i] = fact.default()
        elif status.get(i) == "0":
            values[i] = fact.process(chunks[i])
    return values


# ------------------------------------------------------------------ the cache


class _Run:
    """What one run of one host planned, asked for and read, and what its previous run asked for."""

    def __init__(self, remembered_in: Path | None = None, host_name: str = ""):
        self.planned: dict[tuple, None] = {}  # ordered set
        self.asked: dict[tuple, None] = {}  # ordered set: what snapshot_fact was called for
        self.values: dict[tuple, object] = {}
        self.read_at: dict[tuple, int] = {}  # how many operations had changed the host when each value was read
        self.rereads = 0  # facts read together after a change
        self.remembered_in = remembered_in
        self.remembered = remembered_keys(remembered_in, host_name) if remembered_in else []

    def save(self, host_name: str) -> None:
        """Remember this run's facts for the next run (only when they differ from what was remembered)."""
        keys = list(dict.fromkeys([*self.planned, *self.asked]))
        if self.remembered_in and keys and keys != self.remembered:
            remember_keys(self.remembered_in, host_name, keys)


_runs: dict[tuple[int, str], _Run] = {}


def _run() -> _Run:
    run_key = (id(state._get_module()), host.name)
    if run_key not in _runs:
        config = (getattr(host, "data", None) or {}).get("vpskit_config")
        remembered_in = Path(config).parent / PLAN_FILE if config else None
        run = _runs[run_key] = _Run(remembered_in, host.name)
        if remembered_in:
            atexit.register(run.save, host.name)
    return _runs[run_key]


# ------------------------------------------------------- remembered between runs

PLAN_FILE = ".vpskit-facts.json"


def _literal(value) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def encode_key(key: tuple) -> list[str] | None:
    """A fact key as JSON text (class path, arguments as a Python literal); None when its arguments are no literals."""
    cls, kwargs = key
    if not _literal(kwargs):
        return None
    return [f"{cls.__module__}:{cls.__qualname__}", repr(kwargs)]


def decode_key(encoded) -> tuple | None:
    """The fact key ``encode_key`` wrote; None for a class that no longer exists or text that is no key."""
    try:
        path, kwargs = encoded
        module, _, name = path.partition(":")
        cls = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        kwargs = ast.literal_eval(kwargs)
        hash(kwargs)
    except (ValueError, TypeError, SyntaxError, ImportError, AttributeError, MemoryError, RecursionError):
        return None
    if not (isinstance(cls, type) and issubclass(cls, FactBase) and isinstance(kwargs, tuple)):
        return None
    return cls, kwargs


def remembered_keys(path: Path, host_name: str) -> list[tuple]:
    """The fact keys the last run of ``host_name`` asked for ([] when none were remembered)."""
    try:
        data = json.loads(path.read_text())
        encoded = data.get(host_name, []) if isinstance(data, dict) else []
    except (OSError, ValueError):
        return []
    return [k for k in map(decode_key, encoded if isinstance(encoded, list) else []) if k is not None]


def remember_keys(path: Path, host_name: str, keys: list[tuple]) -> None:
    """Keep ``keys`` as what ``host_name``'s runs ask for (other hosts' entries stay)."""
    try:
        data = json.loads(path.read_text())
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    data[host_name] = [e for e in map(encode_key, keys) if e is not None]
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)
    except OSError:
        pass  # a read-only config folder: the next run reads in more round trips, nothing else


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
    changes = changes_so_far()
    if key in run.values and run.read_at[key] == changes:
        run.asked.setdefault(key, None)
        return run.values[key]
    if changes:
        if run.rereads >= REREADS:
            run.asked.setdefault(key, None)
            return _host_fact(cls, **kwargs)
        run.rereads += 1
    # The fact asked for leads the batch, then those not asked for yet, then those asked for before
    # (some are asked again: the package list, a unit's state), each only without a value read since
    # the last change; what does not fit is read when it is asked for.
    known = [k for k in dict.fromkeys([*run.planned, *run.remembered]) if k != key and run.read_at.get(k) != changes]
    if changes:  # a slow fact (one that asks another machine) is read again only when it is asked for
        known = [k for k in known if not getattr(k[0], "slow", False)]
    others = [k for k in known if k not in run.asked] + [k for k in known if k in run.asked]
    run.asked.setdefault(key, None)
    first = batches([key, *others])[0]
    read = _host_fact(Facts, facts=Wanted(first))
    for i, k in enumerate(first):
        if i in read:
            run.values[k], run.read_at[k] = read[i], changes
    if key not in run.values or run.read_at[key] != changes:
        return _host_fact(cls, **kwargs)
    return run.values[key]


# Reads of the facts still to come after a change, per run; beyond them each fact is read on its own.
REREADS = 4

# What one combined command may grow to, counted as ``command_size`` counts. On its way it goes
# through up to three levels of shell quoting (pyinfra's ``sh -c``, the docker connector's
# ``docker exec ... sh -c`` run by a local shell), where each single quote becomes 53 characters,
# and one argument may not exceed 128 KiB on Linux (beyond it: "Argument list too long").
MAX_COMMAND = 120 * 1024


def command_size(cls: type[FactBase], kwargs: tuple) -> int:
    """A fact's share of a combined command, with room for its quotes to grow in the shell quoting around it."""
    fact, kw = cls(), dict(kwargs)
    try:
        command = fact.command(**kw) if callable(fact.command) else fact.command
    except Exception:  # noqa: BLE001 - a fact that cannot even build its command fails later, on its own
        return MAX_COMMAND
    text = str(command)
    # Its own text and quotes, and the marks around it (4 quotes of their own).
    return len(text) + 56 * (text.count("'") + 4) + 80


def batches(keys: list[tuple], limit: int = MAX_COMMAND) -> list[list[tuple]]:
    """``keys`` in order, cut into groups whose combined command stays under ``limit`` (one fact per group at least)."""
    groups: list[list[tuple]] = []
    size = limit
    for key in keys:
        share = command_size(*key)
        if size + share > limit:
            groups.append([])
            size = 0
        groups[-1].append(key)
        size += share
    return groups


def _host_fact(cls: type[FactBase], *args, **kwargs):
    """``host.get_fact`` of pyinfra's own Host class (never a stand-in set by ``facts_through_snapshot``)."""
    real = host._get_module()
    return type(real).get_fact(real, cls, *args, **kwargs)


def _snapshot_or_host(cls: type[FactBase], *args, **kwargs):
    """``snapshot_fact`` for a fact read with plain, hashable arguments (a list of them counts, as a tuple); the host's own read otherwise."""
    plain = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        hash(tuple(plain.items()))
    except TypeError:
        return _host_fact(cls, *args, **kwargs)
    if args or any(k.startswith("_") for k in kwargs) or not (isinstance(cls, type) and issubclass(cls, FactBase)):
        return _host_fact(cls, *args, **kwargs)
    return snapshot_fact(cls, **plain)


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


def facts_through_snapshot(op, narrowed: dict | None = None):
    """
    pyinfra's operation ``op`` with the facts it reads before its first command taken from the run's snapshot.

    The operation does what it always does; while it has yielded nothing, its
    ``host.get_fact`` calls go through ``snapshot_fact`` (read with the run's other
    facts while the host is unchanged). Once it has yielded a command, which may
    have changed the host, it reads its facts from the host again.

    + op: a pyinfra operation (``server.hostname``, ``files.line``, ...)
    + narrowed: ``{fact class: (another fact class, kwargs)}``: a fact the operation reads without
      arguments answered by one that reads only what the operation looks up in it

    **Example:**

    .. code:: python

        facts_through_snapshot(server.timezone)(name="Set timezone", timezone="Etc/UTC")
        facts_through_snapshot(server.user, {Users: (NamedUsers, {"users": ("appuser",)})})(user="appuser")
    """
    inner = op._inner
    narrowed = narrowed or {}

    def get_fact(cls, *args, **kwargs):
        if cls in narrowed and not args and not kwargs:
            cls, kwargs = narrowed[cls]
        return _snapshot_or_host(cls, *args, **kwargs)

    @functools.wraps(inner)
    def body(*args, **kwargs):
        real = host._get_module()
        commands = inner(*args, **kwargs)
        while True:
            # An attribute of the host object itself shadows Host.get_fact for this step only.
            real.get_fact = get_fact
            try:
                command = next(commands)
            except StopIteration:
                return
            finally:
                del real.get_fact
            yield command
            yield from commands
            return

    return operation()(body)
