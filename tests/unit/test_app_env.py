"""An app's .env: secrets brought from the controller, ${NAME} references, the database password filled in on the host."""

from __future__ import annotations

import subprocess

import pytest

from operations.appspecs import code_of
from operations.checkout import AppPaths, Code, FilledEnvState, env_file_text, filled_env_file
from operations.config import App, ConfigError, Database, parse_config
from operations.render import sha256
from tests.unit.hoststub import run_op

PATHS = AppPaths("api", "/srv/apps", "/var/log/apps")
PG = Database(engine="postgresql")
URL = "postgresql+psycopg://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:${DB_PORT}/${DB_NAME}"


def parse_app(minimal_raw, tmp_path, **fields):
    minimal_raw["apps"] = [{"name": "api", "port": 8000, "repo": "https://git.example.com/api.git", **fields}]
    return parse_config(minimal_raw, base_dir=str(tmp_path))


def problems(minimal_raw, tmp_path, **fields) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_app(minimal_raw, tmp_path, **fields)
    return exc.value.problems


# ------------------------------------------------------------------ config


def test_brought_secrets_are_read_from_the_environment_and_files_next_to_the_config(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("VPSKIT_TEST_SMTP", "s3cret-smtp")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "api").write_text("s3cret-api\n")
    cfg = parse_app(minimal_raw, tmp_path, secrets_from={"SMTP_PASSWORD": "env:VPSKIT_TEST_SMTP", "API_KEY": "file:keys/api"})
    assert cfg.brought_secrets(cfg.apps[0]) == {"SMTP_PASSWORD": "s3cret-smtp", "API_KEY": "s3cret-api"}


def test_a_missing_brought_secret_is_a_config_error_naming_the_app_and_the_variable(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.delenv("VPSKIT_TEST_NOPE", raising=False)
    found = problems(minimal_raw, tmp_path, secrets_from={"SMTP_PASSWORD": "env:VPSKIT_TEST_NOPE", "API_KEY": "file:missing"})
    assert found == [
        "apps[0].secrets_from.SMTP_PASSWORD: app api: environment variable VPSKIT_TEST_NOPE is not set",
        f"apps[0].secrets_from.API_KEY: app api: file {str(tmp_path / 'missing')!r} does not exist",
    ]


def test_bad_brought_secrets_never_show_their_value(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("VPSKIT_TEST_QUOTE", "it's-secret")
    found = problems(
        minimal_raw,
        tmp_path,
        secrets_from={"API_KEY": "env:VPSKIT_TEST_QUOTE", "PATH": "env:VPSKIT_TEST_QUOTE", "X": "vault:x"},
        env={"X": "1"},
    )
    assert [p.split(": ", 1)[0] for p in found] == ["apps[0].secrets_from.API_KEY", "apps[0].secrets_from.PATH", "apps[0].secrets_from.X"]
    assert not any("it's-secret" in p for p in found)
    assert "single quote or line break" in found[0]


def test_references_must_name_a_secret_or_database_value_of_the_app(minimal_raw, tmp_path):
    found = problems(minimal_raw, tmp_path, env={"URL": URL, "KEY": "${SECRET_KEY}"})
    # Without a PostgreSQL database the DB_* names are unknown; SECRET_KEY (generated) is fine.
    assert found and all(p.startswith("apps[0].env.URL: ${DB_") for p in found), found
    cfg = parse_app(minimal_raw, tmp_path, env={"URL": URL, "KEY": "${SECRET_KEY}"}, database={"engine": "postgresql"})
    assert cfg.apps[0].env["URL"] == URL
    assert problems(minimal_raw, tmp_path, env={"A": "${NOPE}"}) == [
        "apps[0].env.A: ${NOPE} is not a secret or database value of app api (SECRET_KEY)"
    ]


# ------------------------------------------------------------------ the .env text


def test_references_are_filled_in_and_the_database_password_left_for_the_host():
    app = App(
        "api",
        8000,
        database=PG,
        secrets=("SECRET_KEY",),
        secrets_from={"SMTP_PASSWORD": "env:X"},
        env={
            "DATABASE_URL_ASYNC": URL,
            "POSTGRES_PASSWORD": "${DB_PASSWORD}",
            "MAIL": "smtp://u:${SMTP_PASSWORD}@mail",
            "SIGN": "${SECRET_KEY}",
        },
    )
    text = env_file_text(Code(**code_of(app)), PATHS, {"SECRET_KEY": "kept"}, brought={"SMTP_PASSWORD": "brought"}, db_port=5433)
    assert text.splitlines()[2:] == [
        "DATABASE_URL_ASYNC='postgresql+psycopg://api:${DB_PASSWORD}@127.0.0.1:5433/api'",
        "POSTGRES_PASSWORD='${DB_PASSWORD}'",
        "MAIL=smtp://u:brought@mail",
        "SIGN=kept",
        "SECRET_KEY=kept",
        "SMTP_PASSWORD=brought",
    ]


# ------------------------------------------------------------------ filled on the host


def sh(command: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True)


def test_the_password_is_filled_in_on_the_host_and_a_second_run_sees_no_change(tmp_path):
    """Run for real: the installed .env holds the password, and the fact reads it back as the same text."""
    secret = tmp_path / "api.env"
    secret.write_text("DATABASE_URL=postgresql://api:Pw0rdAbc123@127.0.0.1:5432/api\n")
    dest = tmp_path / ".env"
    content = "A=1\nPOSTGRES_PASSWORD='${DB_PASSWORD}'\nURL='postgresql://api:${DB_PASSWORD}@h/api'\n"
    args = dict(dest=str(dest), content=content, secret_path=str(secret), user="root", group="root")
    done = run_op(filled_env_file, {FilledEnvState: None}, **args)
    (_, upload, staged), install = done.commands
    (tmp_path / "staged").write_text(upload.decode())
    run = sh(install.replace(staged, str(tmp_path / "staged")), tmp_path)
    assert run.returncode == 0 and "Pw0rdAbc123" not in run.stdout + run.stderr + install
    assert dest.read_text() == "A=1\nPOSTGRES_PASSWORD='Pw0rdAbc123'\nURL='postgresql://api:Pw0rdAbc123@h/api'\n"
    assert oct(dest.stat().st_mode)[-3:] == "600"
    state = FilledEnvState().process(sh(FilledEnvState().command(str(dest), str(secret)), tmp_path).stdout.splitlines())
    assert state["sha256"] == sha256(content)
    assert run_op(filled_env_file, {FilledEnvState: state}, **args).is_noop
    # A changed template (or a changed password) writes it again.
    assert run_op(filled_env_file, {FilledEnvState: state}, **{**args, "content": content + "B=2\n"}).commands
