"""docs/config.md, generated from the schema: every section and field with its type, default, allowed values and meaning.

python -m operations.config.reference            # rewrite docs/config.md
python -m operations.config.reference --check    # exit 1 when docs/config.md is not what the schema says
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import typing
from pathlib import Path

from .model import Config
from .schema import config_fields, default_of, doc_of, has_default, rule_of, table_of, unwrap

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"
HEADER = """# Config reference

<!-- Generated from operations/config/ by `make docs`; edit the field declarations there, not this file. -->
"""

TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def type_name(tp) -> str:
    optional = tp is not unwrap(tp)
    tp = unwrap(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        name = "table"
    elif origin is tuple:
        name = "list of tables" if dataclasses.is_dataclass(args[0]) else f"list of {TYPE_NAMES[args[0]]}s"
    elif origin is dict:
        name = f"table of {TYPE_NAMES[args[1]]}s"
    else:
        name = TYPE_NAMES[tp]
    return f"{name} (optional)" if optional else name


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return ""


def anchor(title: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def sections(cls=Config, path: str = ""):
    """(TOML header, section class) of every table, depth first in declaration order."""
    hints = typing.get_type_hints(cls)
    for f in config_fields(cls):
        nested = table_of(hints[f.name])
        if nested is None:
            continue
        name = f"{path}.{f.name}" if path else f.name
        many = typing.get_origin(unwrap(hints[f.name])) is tuple
        yield (f"[[{name}]]" if many else f"[{name}]"), nested
        yield from sections(nested, name)


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def section_table(header: str, cls) -> str:
    hints = typing.get_type_hints(cls)
    lines = [f"## `{header}`", "", inspect.cleandoc(cls.__doc__ or ""), ""]
    lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for f in config_fields(cls):
        tp = hints[f.name]
        nested = table_of(tp)
        if not has_default(f):
            default = "required"
        elif nested is not None and default_of(f) not in ((), None):
            default = ""
        elif default_of(f) is None:
            default = "not set"
        else:
            default = f"`{toml_value(default_of(f))}`"
        description = doc_of(f)
        if nested is not None:
            name = header.strip("[]") + "." + f.name
            title = f"[[{name}]]" if typing.get_origin(unwrap(tp)) is tuple else f"[{name}]"
            description += f" See [`{title}`](#{anchor(title)})."
        rule, allowed = rule_of(f), rule_of(f).allowed()
        if allowed and has_default(f) and default_of(f) in ("", 0) and rule.problem(default_of(f)):
            allowed += f", or `{toml_value(default_of(f))}` (not set)"
        row = [f"`{f.name}`", type_name(tp), default, allowed, description]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [HEADER, inspect.cleandoc(Config.__doc__), ""]
    parts.append("Sections: " + ", ".join(f"[`{h}`](#{anchor(h)})" for h, _ in sections()) + ".\n")
    parts += [section_table(header, cls) for header, cls in sections()]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
