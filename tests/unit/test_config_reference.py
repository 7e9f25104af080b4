"""docs/config.md is generated from the config schema, and says what the code does."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from operations.config import App, Config, DockerEngine, Server, allowed, parse_config
from operations.config.reference import DOC, main, render, sections
from operations.config.schema import Rule, config_fields, doc_of, field_problems, rule_of, setting


def _all_fields():
    for header, cls in sections():
        for f in config_fields(cls):
            yield f"{header}.{f.name}", cls, f


def test_docs_config_md_is_up_to_date():
    """A field declared, changed or described anew without `make docs` leaves docs/config.md stale."""
    assert DOC.read_text() == render(), "docs/config.md is stale: run `make docs`"
    assert main(["--check"]) == 0


def test_check_mode_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "config.md"
    stale.write_text(render().replace("| `ssh_port` |", "| `ssh_prot` |"))
    monkeypatch.setattr("operations.config.reference.DOC", stale)
    assert main(["--check"]) == 1
    assert "make docs" in capsys.readouterr().err


def test_every_section_and_field_is_described():
    """Each section has a docstring (its intro) and each field a one-line description."""
    assert all(cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(") for _, cls in sections())
    missing = [path for path, _, f in _all_fields() if not doc_of(f).strip() or "\n" in doc_of(f)]
    assert not missing, missing


def test_every_field_appears_with_its_default_and_choices():
    text = render()
    for header, cls in sections():
        body = text.split(f"## `{header}`", 1)[1].split("\n## ", 1)[0]
        for f in config_fields(cls):
            row = re.search(rf"^\| `{f.name}` \|.*$", body, re.MULTILINE)
            assert row, f"{header}.{f.name}"
            for choice in rule_of(f).choices:
                assert f"`{choice}`" in row[0]
    assert "| `ssh_port` | integer | `22` | 1-65535 |" in text
    assert '| `upgrade` | string | `"full"` | `full`, `safe`, `none` |' in text
    assert "| `port` | integer | required | 1-65535 |" in text


def test_the_declared_rule_is_the_one_enforced(minimal_raw, tmp_path):
    """Choices, ranges and patterns come from the field declarations: a value outside them is one problem line."""
    assert allowed(App, "worker_class") == ("sync", "gthread", "eventlet", "gevent", "uvicorn")
    assert field_problems(Server(address="h", upgrade="yes", ssh_port=0)) == [
        "ssh_port: must be a port number 1-65535, got 0",
        "upgrade: must be one of full, safe, none, got 'yes'",
    ]
    assert field_problems(DockerEngine(storage_driver="aufs"), "docker") == [
        "docker.storage_driver: must be empty (the engine's default) or one of overlay2, fuse-overlayfs, btrfs, zfs, vfs, got 'aufs'"
    ]
    minimal_raw["server"]["packages"] = ["ok", "Not OK"]
    with pytest.raises(Exception) as exc:
        parse_config(minimal_raw, base_dir=str(tmp_path))
    assert exc.value.problems == ["server.packages[1]: 'Not OK' is not a Debian package name"]


def test_a_default_is_always_valid():
    """Every declared default passes its own rule, unless it is the empty string or 0 that means "not set"."""
    for path, _cls, f in _all_fields():
        if f.default is not dataclasses.MISSING and f.default not in (None, (), "", 0):
            value = f.default
            items = value if isinstance(value, tuple) else (value,)
            assert all(rule_of(f).problem(v) is None for v in items), path


def test_a_new_field_is_one_declaration():
    """Declaring a field with `setting` is all it takes: default, rule and description travel with it."""

    @dataclasses.dataclass(frozen=True)
    class Example:
        """An example section."""

        level: int = setting(3, "How loud.", minimum=1, maximum=5)

    (f,) = dataclasses.fields(Example)
    assert Example().level == 3 and doc_of(f) == "How loud." and rule_of(f) == Rule(minimum=1, maximum=5)
    assert field_problems(Example(level=9), "example") == ["example.level: must be between 1 and 5, got 9"]
    assert rule_of(f).allowed() == "1-5"


def test_config_hints_resolve():
    """The loader and the reference read the type hints of every section."""
    for _, cls in sections():
        typing.get_type_hints(cls)
    assert typing.get_type_hints(Config)["apps"] == tuple[App, ...]


def test_a_pattern_without_words_is_refused():
    """A pattern alone would give users a regular expression to read: its expect= text is required."""
    with pytest.raises(TypeError, match="expect="):
        setting("", "A name.", pattern=r"^[a-z]+$")
