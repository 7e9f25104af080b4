"""Config of the scheduled health check and its notifiers ([monitor] schedule, remind_hours, notify), and what reaches the host."""

from __future__ import annotations

import copy

import pytest

from operations.config import Notifier, parse_config
from operations.monitor import notifier_settings
from operations.render import render
from tests.unit.conftest import config_problems

EMAIL = {
    "kind": "email", "smtp_host": "smtp.example.com", "smtp_user": "alerts", "password_env": "VPSKIT_TEST_SMTP_PW",
    "mail_from": "vps@example.com", "mail_to": ["ops@example.com"],
}  # fmt: skip
HOOKS = [
    {"kind": "webhook", "url": "https://hooks.example.com/vpskit"},
    {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/abc"},
    {"kind": "discord", "url": "https://discord.com/api/webhooks/1/abc"},
    {"kind": "ntfy", "url": "https://ntfy.sh/my-vps-alerts"},
]


def _with_monitor(raw, **monitor):
    raw = copy.deepcopy(raw)
    raw["monitor"] = monitor
    return raw


def test_defaults_check_every_5_minutes_remind_daily_and_notify_nobody(minimal_raw, tmp_path):
    m = parse_config(minimal_raw, base_dir=str(tmp_path)).monitor
    assert (m.schedule, m.remind_hours, m.notify) == ("*:0/5", 24, ())


def test_every_notifier_kind_parses_and_the_password_comes_from_the_environment(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.setenv("VPSKIT_TEST_SMTP_PW", "relay secret")
    raw = _with_monitor(minimal_raw, schedule="*:*:0/30", remind_hours=6, notify=[*HOOKS, EMAIL])
    m = parse_config(raw, base_dir=str(tmp_path)).monitor
    assert [n.kind for n in m.notify] == ["webhook", "slack", "discord", "ntfy", "email"]
    assert m.notify[4] == Notifier(**{**EMAIL, "mail_to": ("ops@example.com",)})
    assert (m.notify[4].smtp_port, m.notify[4].smtp_security, m.notify[4].password()) == (587, "starttls", "relay secret")


@pytest.mark.parametrize(
    ("monitor", "field", "words"),
    [
        ({"schedule": "every 5 min!"}, "monitor.schedule", "systemd calendar"),
        ({"remind_hours": 0}, "monitor.remind_hours", "1 or more"),
        ({"notify": [{"kind": "pager", "url": "https://x.example.com"}]}, "monitor.notify[0].kind", "webhook, slack"),
        ({"notify": [{"kind": "slack"}]}, "monitor.notify[0].url", "http:// or https://"),
        ({"notify": [{"kind": "ntfy", "url": "ntfy.sh/topic"}]}, "monitor.notify[0].url", "http:// or https://"),
        (
            {"notify": [{"kind": "webhook", "url": "https://x.example.com", "mail_to": ["a@b.cd"]}]},
            "monitor.notify[0].mail_to",
            'only by kind = "email"',
        ),
        ({"notify": [{**EMAIL, "url": "https://x.example.com"}]}, "monitor.notify[0].url", "not used"),
        ({"notify": [{**EMAIL, "smtp_host": ""}]}, "monitor.notify[0].smtp_host", "SMTP relay"),
        ({"notify": [{**EMAIL, "smtp_port": 0}]}, "monitor.notify[0].smtp_port", "port number"),
        ({"notify": [{**EMAIL, "smtp_security": "tls"}]}, "monitor.notify[0].smtp_security", "starttls, ssl, none"),
        ({"notify": [{**EMAIL, "smtp_security": "none"}]}, "monitor.notify[0].smtp_security", "in clear"),
        ({"notify": [{**EMAIL, "mail_from": "vps"}]}, "monitor.notify[0].mail_from", "e-mail address"),
        ({"notify": [{**EMAIL, "mail_to": []}]}, "monitor.notify[0].mail_to", "at least one"),
        ({"notify": [{**EMAIL, "mail_to": ["ops"]}]}, "monitor.notify[0].mail_to[0]", "not an e-mail address"),
        ({"notify": [{**EMAIL, "smtp_user": ""}]}, "monitor.notify[0].smtp_user", "go together"),
        ({"notify": [{**EMAIL, "password_env": ""}]}, "monitor.notify[0].password_env", "go together"),
        ({"notify": [{**EMAIL, "password_env": "SMTP-PW"}]}, "monitor.notify[0].password_env", "environment variable name"),
        ({"notify": [{**EMAIL, "password": "hunter2"}]}, "monitor.notify[0].password", "unknown key"),
    ],
)
def test_each_bad_monitor_field_gives_one_line_naming_it(minimal_raw, tmp_path, monkeypatch, monitor, field, words):
    monkeypatch.setenv("VPSKIT_TEST_SMTP_PW", "relay secret")
    problems = config_problems(_with_monitor(minimal_raw, **monitor), tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"{field}: ") and words in problems[0], problems


def test_a_missing_password_variable_is_a_config_error_naming_the_field(minimal_raw, tmp_path, monkeypatch):
    monkeypatch.delenv("VPSKIT_TEST_SMTP_PW", raising=False)
    problems = config_problems(_with_monitor(minimal_raw, notify=[EMAIL]), tmp_path)
    assert problems == ["monitor.notify[0].password_env: environment variable VPSKIT_TEST_SMTP_PW is not set (the SMTP relay password)"]


def test_what_the_host_gets_per_notifier_is_labelled_by_its_config_entry(monkeypatch):
    monkeypatch.setenv("VPSKIT_TEST_SMTP_PW", "relay secret")
    email = Notifier(**{**EMAIL, "mail_to": ("ops@example.com",), "smtp_port": 465, "smtp_security": "ssl"})
    settings = notifier_settings((Notifier(**HOOKS[1]), email))
    assert settings == [
        {"label": "monitor.notify[0] (slack hooks.slack.com)", "kind": "slack", "url": HOOKS[1]["url"]},
        {"label": "monitor.notify[1] (email smtp.example.com)", "kind": "email", "smtp_host": "smtp.example.com",
         "smtp_port": 465, "smtp_security": "ssl", "smtp_user": "alerts", "password": "relay secret",
         "mail_from": "vps@example.com", "mail_to": ["ops@example.com"]},
    ]  # fmt: skip


def test_the_timer_starts_on_time_only_when_asked():
    on_time = render("oneshot.timer.j2", unit="vpskit-health.service", schedule="*:0/5", accuracy="1s")
    assert "OnCalendar=*:0/5\nPersistent=true\nAccuracySec=1s\nUnit=vpskit-health.service\n" in on_time
    assert "AccuracySec" not in render("oneshot.timer.j2", unit="x.service", schedule="*:0/5")
