"""[deploy_user]: not root, and at least one readable public key, since it is the only way in after hardening."""

from __future__ import annotations

from .base import Checker


def check(c: Checker, config) -> None:
    du = config.deploy_user
    if du.name == "root":
        c.add("deploy_user.name", "must not be root: vpskit creates a separate admin user")
    if not du.public_keys:
        c.add("deploy_user.public_keys", "list at least one public key file: it is how you log in after hardening")
    for i, p in enumerate(du.public_keys):
        c.key_file(f"deploy_user.public_keys[{i}]", p, public=True)
    if du.private_key:
        c.key_file("deploy_user.private_key", du.private_key, public=False)
