"""Compose apps and the Caddy-only app fields: what a compose app needs, and fields that mean nothing for its kind."""

from __future__ import annotations

from ...revision import is_commit
from .base import Checker, relative_path

# Fields that mean something for venv apps only, and for compose apps only.
VENV_ONLY = ("build", "static_dir", "python", "worker_class")
COMPOSE_ONLY = ("compose_file", "service", "public_services", "container_databases")


def check(c: Checker, where: str, app, proxy: str) -> None:
    if app.api_upstream and proxy != "caddy":
        c.add(f"{where}.api_upstream", 'is used only with [web] proxy = "caddy"')
    if app.basic_auth is not None and proxy != "caddy":
        c.add(f"{where}.basic_auth", 'is used only with [web] proxy = "caddy"')
    if not app.is_compose:
        for name in COMPOSE_ONLY:
            if getattr(app, name):
                c.add(f"{where}.{name}", 'is used only by apps with kind = "compose"')
        for j, job in enumerate(app.jobs):
            if job.service:
                c.add(f"{where}.jobs[{j}].service", 'is used only by apps with kind = "compose"')
        return
    if not app.compose_file:
        c.add(
            f"{where}.compose_file",
            'is required for kind = "compose" (the compose file in the repo, e.g. "compose.yaml")',
        )
    elif not relative_path(app.compose_file):
        c.add(f"{where}.compose_file", f"must be a path inside the repo, got {app.compose_file!r}")
    if app.state == "present" and not app.repo:
        c.add(f"{where}.repo", 'is required for kind = "compose"')
    if (app.migrate or app.seed) and not app.service:
        c.add(f"{where}.service", "is required with migrate or seed (the service they run in)")
    if is_commit(app.revision):
        c.add(f"{where}.revision", "a compose app's checkout follows a branch or tag; pin a tag (commit SHAs are for venv apps)")
    for name in VENV_ONLY:
        if getattr(app, name):
            c.add(f"{where}.{name}", 'is not used by kind = "compose" apps (the image builds the app)')
    if app.database.engine != "none":
        c.add(
            f"{where}.database.engine",
            "a compose app keeps its database in a container: list it in container_databases",
        )
    for j, job in enumerate(app.jobs):
        if not (job.service or app.service):
            c.add(f"{where}.jobs[{j}].service", "is required when the app has no service (the one the job runs in)")
