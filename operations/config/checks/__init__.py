"""Validation of a whole config: each field's own rule (from the schema), then each section's cross-field rules.

Each module here holds the rules of one section that a field's declared rule cannot say: uniqueness across apps,
files that must exist, fields that depend on each other. They run in the order of the sections in vpskit.toml.
"""

from __future__ import annotations

from ..model import Config
from ..schema import field_problems
from . import apps, backups, deploy_user, fail2ban, firewall, first_login, monitor, postgres, server, ssh, sysctl, web
from .base import Checker, is_cron_schedule, is_domain, is_port

SECTIONS = (server, first_login, deploy_user, firewall, ssh, fail2ban, apps, postgres, backups, monitor, web, sysctl)

__all__ = ["is_cron_schedule", "is_domain", "is_port", "validate"]


def validate(config: Config) -> list[str]:
    """Every problem in ``config``, one line each; empty when it is good.

    A field whose value breaks its declared rule gets that one line; the section rules add lines for other fields.
    """
    problems = field_problems(config)
    checker = Checker(config)
    for section in SECTIONS:
        section.check(checker, config)
    named = {p.split(": ", 1)[0] for p in problems}
    return problems + [p for p in checker.problems if p.split(": ", 1)[0] not in named]
