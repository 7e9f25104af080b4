"""From vpskit.toml to a validated ``Config``: read the file, build the sections, check every field."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from pathlib import Path

from .checks import validate
from .model import Config, ConfigError
from .schema import config_fields, has_default, unwrap

CONFIG_ENV = "VPSKIT_CONFIG"
DEFAULT_CONFIG_FILE = "vpskit.toml"

_BAD = object()


def _build(cls, raw, where: str, problems: list[str]):
    """Build section ``cls`` from a TOML table, recording unknown keys and bad types."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table, got {type(raw).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in config_fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{path}: unknown key{hint}")
            continue
        converted = _convert(hints[key], value, path, problems)
        if converted is not _BAD:
            kwargs[key] = converted
    for name, f in known.items():
        if not has_default(f) and name not in kwargs:
            if name not in raw:
                problems.append(f"{where + '.' if where else ''}{name}: is required")
            # Stand in an empty value so the rest of the config is still checked;
            # the problem is already recorded, so no config comes out of this.
            placeholder = {str: "", int: 0}.get(hints[name], _BAD)
            if placeholder is _BAD:
                return None
            kwargs[name] = placeholder
    return cls(**kwargs)


def _convert(tp, value, path: str, problems: list[str]):
    tp = unwrap(tp)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        built = _build(tp, value, path, problems)
        return _BAD if built is None else built
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{path}: must be a list, got {type(value).__name__} {value!r}")
            return _BAD
        items = [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(it is _BAD for it in items) else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: must be a table, got {type(value).__name__} {value!r}")
            return _BAD
        _, value_tp = typing.get_args(tp)
        items = {k: _convert(value_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in items.values()) else items
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        problems.append(f"{path}: must be {tp.__name__}, got {type(value).__name__} {value!r}")
        return _BAD
    return value


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The config file: explicit path, $VPSKIT_CONFIG, or ./vpskit.toml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def parse_config(raw: dict, base_dir: str = ".", source: str = "<config>") -> Config:
    """Build and validate a ``Config`` from already-parsed TOML data."""
    problems: list[str] = []
    raw = dict(raw)
    if "app" in raw and "apps" not in raw:
        problems.append("app: unknown key (did you mean 'apps'? write [[apps]])")
        raw.pop("app")
    if "monitoring" in raw and "monitor" not in raw:
        problems.append("monitoring: unknown section: Prometheus and alerts are set in [monitor] (prometheus = true, [monitor.alerts])")
        raw.pop("monitoring")
    if "server" not in raw:
        problems.append("server: is required (a [server] table with at least 'address')")
        raise ConfigError(source, problems)
    config = _build(Config, raw, "", problems)
    if config is not None:
        config = dataclasses.replace(config, base_dir=str(base_dir))
        # A field with a type problem was left at its default: do not also report the default.
        bad = {p.split(": ", 1)[0] for p in problems}
        problems.extend(p for p in validate(config) if p.split(": ", 1)[0] not in bad)
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read, type-check and validate the config file; raise ``ConfigError`` listing every problem."""
    p = config_path(path)
    if not p.is_file():
        raise ConfigError(str(p), [f"file not found: copy examples/vpskit.toml to {DEFAULT_CONFIG_FILE} or set ${CONFIG_ENV}"])
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), [f"not valid TOML: {e}"]) from None
    return parse_config(raw, base_dir=str(p.resolve().parent), source=str(p))
