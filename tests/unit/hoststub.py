"""A stand-in for pyinfra's host in unit tests: facts in, an operation's commands out.

Shaped like pyinfra's own operation tests: an operation gets its arguments and the
facts the host would report, and the test checks the commands it yields and whether
it is a no-op. Facts are given by class (any arguments) or by class and arguments::

    done = run_op(checked_file, {fact(FileState, path="/etc/x"): None}, dest="/etc/x", content="y")
    assert done.commands[-1].startswith("chmod 644 ")

Operations read facts through ``host.get_fact`` or the run's snapshot
(``operations.snapshot.snapshot_fact``); the stub answers both from the same facts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO, StringIO
from types import SimpleNamespace

from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.context import ctx_host, ctx_state

from operations import revision, snapshot


def fact(cls, **kwargs) -> tuple:
    """The key for ``cls`` read with exactly these arguments."""
    return cls, tuple(sorted(kwargs.items()))


class StubHost:
    """pyinfra's ``host`` for one test: ``get_fact`` answers from ``facts``, ``noop`` is recorded.

    A fact asked for but not given is an error naming it: a test states every fact an
    operation reads.
    """

    name = "stub"

    def __init__(self, facts: dict | None = None):
        self.facts = dict(facts or {})
        self.noops: list[str] = []
        self.said: list[str] = []  # what the operation printed (host.log)
        self.asked: list[str] = []  # fact class names, in the order they were asked for
        self.ops: dict = {}  # what pyinfra's state.ops holds for this host: operations done so far

    def _value(self, cls, kwargs: dict):
        for key in (fact(cls, **kwargs), cls):
            if key in self.facts:
                return self.facts[key]
        raise KeyError(f"the test gives no fact {cls.__name__}({kwargs})")

    def get_fact(self, cls, *args, **kwargs):
        self.asked.append(cls.__name__)
        if cls is snapshot.Facts:
            return {i: self._value(c, dict(kw)) for i, (c, kw) in enumerate(kwargs["facts"])}
        return self._value(cls, kwargs)

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def log(self, message: str, log_func=None) -> None:
        self.said.append(message)

    def get_temp_filename(self, hash_key: str | None = None, hash_filename: bool = True, **_) -> str:
        key = hash_key or "temp"
        return f"/tmp/pyinfra-{hashlib.sha1(key.encode()).hexdigest() if hash_filename else key}"


@contextmanager
def on_stub(facts: dict | None = None) -> Iterator[StubHost]:
    """pyinfra's ``host`` and ``state`` are a StubHost with ``facts`` (and a fresh run) inside the block."""
    stub = StubHost(facts)
    state = SimpleNamespace(ops={stub: stub.ops}, is_executing=False)
    with ctx_state.use(state), ctx_host.use(stub):
        try:
            yield stub
        finally:
            snapshot._runs.pop((id(state), stub.name), None)
            revision._said.clear()


def shown(command):
    """A yielded command as a test compares it: the shell text, or ``("upload", content, dest)``."""
    if isinstance(command, str):
        return command
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        src = command.src.getvalue() if isinstance(command.src, (BytesIO, StringIO)) else command.src
        return ("upload", src, command.dest)
    return command


@dataclass
class Done:
    """What an operation did on the stub: its commands and the no-op messages it gave."""

    commands: list = field(default_factory=list)
    noops: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    @property
    def is_noop(self) -> bool:
        """Nothing to do: no command, and the operation said why."""
        return not self.commands and bool(self.noops)


def run_op(op, facts: dict | None = None, **arguments) -> Done:
    """Run the pyinfra operation ``op`` with ``arguments`` against a host reporting ``facts``."""
    with on_stub(facts) as stub:
        commands = [shown(c) for c in op._inner(**arguments)]
    return Done(commands, stub.noops, stub.asked, stub.said)


def check_spec(op, facts: dict, arguments: dict, commands: list) -> Done:
    """One operation spec: ``op`` yields exactly ``commands``, and is a no-op (with its reason) when there are none."""
    done = run_op(op, facts, **arguments)
    assert done.commands == commands
    assert done.is_noop is (not commands), f"no-op {done.is_noop} with commands {done.commands} and messages {done.noops}"
    return done
