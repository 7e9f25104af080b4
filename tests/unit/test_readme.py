"""The README's config reference lists every config field with its real default."""

from __future__ import annotations

import dataclasses
import re
import typing

from operations import config as cfg
from tests.rig import ROOT


def _fields(cls, prefix=""):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "base_dir":
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _fields(tp, f"{prefix}{f.name}.")
            continue
        yield f"{prefix}{f.name}", f
        args = typing.get_args(tp)
        if typing.get_origin(tp) is tuple and args and dataclasses.is_dataclass(args[0]):
            yield from _fields(args[0], f"{prefix}{f.name}[].")


def _toml(value) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value) if isinstance(value, int) else f'"{value}"'
    if value in ((), {}):
        return "[]" if value == () else "{}"
    return None  # long lists are described in words


def test_every_config_field_is_in_the_readme_with_its_default():
    readme = (ROOT / "README.md").read_text()
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([a-z_.\[\]0-9]+)` \| ([^|]+) \|", readme, re.M)}
    missing, wrong = [], []
    for path, f in _fields(cfg.Config):
        if path not in rows:
            missing.append(path)
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            expected = "(required)"
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            expected = _toml(default)
            expected = expected and f"`{expected}`"
        if expected and path != "deploy_user.public_keys" and rows[path].strip() != expected:
            wrong.append(f"{path}: README says {rows[path].strip()}, code says {expected}")
    assert not missing, f"fields missing from the README's config reference: {missing}"
    assert not wrong, wrong
