"""The config schema: each field's default, allowed values and description, declared once.

A field of a config section is declared with ``setting``::

    ssh_port: int = setting(22, "The port sshd listens on once hardened.", **PORT)
    upgrade: str = setting("full", "`full` (apt dist-upgrade), `safe` (apt upgrade) or `none`.",
                           choices=("full", "safe", "none"))

The rule it carries (choices, a range, a pattern, a test) is checked for every value by ``field_problems``
and listed in the generated reference (docs/config.md); a section's checks module holds only the
rules that look at more than one field. A field's default is always valid.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """What a field's value may be. Empty parts allow anything."""

    choices: tuple = ()
    minimum: int | float | None = None
    maximum: int | float | None = None
    # Regular expression (re.match) each value, or each item of a list, must match.
    pattern: str = ""
    # What the pattern accepts, in words: "a valid user name".
    expect: str = ""
    # The problem line when the rule is broken, if not the generic one; may use
    # {value}, {choices}, {minimum} and {maximum}.
    error: str = ""
    # Unit of a number in messages and the reference: "seconds".
    unit: str = ""
    # A test a value that matches the pattern must also pass, for what a regular expression cannot say
    # (a systemd calendar event): ``calendar.is_calendar``.
    valid: typing.Callable[[str], bool] | None = None

    def allowed(self) -> str:
        """The allowed values in words, for the reference."""
        unit = f" {self.unit}" if self.unit else ""
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.minimum}-{self.maximum}{unit}"
        if self.minimum is not None:
            return f"{self.minimum} or more{unit}"
        if self.maximum is not None:
            return f"up to {self.maximum}{unit}"
        return self.expect

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` (one item, for a list), or None."""
        if self.choices and value not in self.choices:
            return self._say("must be one of {choices}, got {value!r}", value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = self.minimum, self.maximum
            unit = f" {self.unit}" if self.unit else ""
            if low is not None and high is not None and not low <= value <= high:
                return self._say("must be between {minimum} and {maximum}, got {value}", value)
            if low is not None and value < low:
                return self._say("must be {minimum} or more" + unit + ", got {value}", value)
            if high is not None and value > high:
                return self._say("must be {maximum} or less" + unit + ", got {value}", value)
        if self.pattern and isinstance(value, str) and not re.match(self.pattern, value):
            return self._say("{value!r} is not " + self.expect, value)
        if self.valid and isinstance(value, str) and value and not self.valid(value):
            return self._say("{value!r} is not " + self.expect, value)
        return None

    def _say(self, generic: str, value) -> str:
        choices = ", ".join(str(c) for c in self.choices)
        return (self.error or generic).format(value=value, choices=choices, minimum=self.minimum, maximum=self.maximum)


# Rules several sections share.
PORT = {"minimum": 1, "maximum": 65535, "error": "must be a port number 1-65535, got {value!r}"}
USER_NAME = r"^[a-z_][a-z0-9_-]{0,31}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ABSOLUTE = r"^/"
PYTHON_VERSION = {
    "pattern": r"^3\.\d{1,2}$",
    "expect": "a Python version like '3.12'",
    "error": "must be a Python version like '3.12', got {value!r}",
}


def setting(default=dataclasses.MISSING, doc: str = "", *, internal: bool = False, **rule):
    """A config field: its default (a section class for a nested table), one-line description and rule."""
    if rule.get("pattern") and not rule.get("expect"):
        raise TypeError("a pattern needs expect=, what it accepts in words (for the message and the reference)")
    meta = {"doc": doc, "rule": Rule(**rule), "internal": internal}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    if isinstance(default, type):
        return dataclasses.field(default_factory=default, metadata=meta)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def rule_of(f: dataclasses.Field) -> Rule:
    return f.metadata.get("rule", Rule())


def doc_of(f: dataclasses.Field) -> str:
    return f.metadata.get("doc", "")


def allowed(cls, name: str) -> tuple:
    """The choices declared for field ``name`` of section ``cls`` (e.g. gunicorn's worker classes)."""
    return rule_of(next(f for f in dataclasses.fields(cls) if f.name == name)).choices


def config_fields(cls) -> list[dataclasses.Field]:
    """The fields of a section a user may set (not the ones vpskit fills in itself)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def default_of(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def unwrap(tp):
    """``X | None`` -> ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def table_of(tp):
    """The section class of a nested table (``Database``) or list of tables (``tuple[Job, ...]``), or None."""
    tp = unwrap(tp)
    if dataclasses.is_dataclass(tp):
        return tp
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and args and dataclasses.is_dataclass(args[0]):
        return args[0]
    return None


def field_problems(section, where: str = "") -> list[str]:
    """Every value of ``section`` (and the tables in it) that breaks its field's rule, as ``path: problem``."""
    problems: list[str] = []
    hints = typing.get_type_hints(type(section))
    for f in config_fields(type(section)):
        value = getattr(section, f.name)
        path = f"{where}.{f.name}" if where else f.name
        if table_of(hints[f.name]) is not None:
            if isinstance(value, tuple):
                for i, item in enumerate(value):
                    problems += field_problems(item, f"{path}[{i}]")
            elif value is not None:
                problems += field_problems(value, path)
            continue
        if has_default(f) and value == default_of(f):
            continue
        rule = rule_of(f)
        items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for i, item in items:
            problem = rule.problem(item)
            if problem:
                problems.append(f"{path if i is None else f'{path}[{i}]'}: {problem}")
    return problems
