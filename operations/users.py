"""The deploy user: the admin who owns the apps and logs in after hardening."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server

from .config import DeployUser
from .render import render
from .validated import checked_file


def sudoers_path(user: str) -> str:
    # sudo skips files in sudoers.d whose names contain a dot.
    return f"/etc/sudoers.d/90-vpskit-{user}"


@deploy("Deploy user")
def deploy_user(user: DeployUser, public_keys: list[str], sudo_group: str = "sudo", extra_groups: list[str] = ()):
    """
    Ensure the deploy user exists with sudo and exactly the configured SSH keys.

    + user: the ``[deploy_user]`` section of the config
    + public_keys: the public key lines for authorized_keys (.ssh 700, file 600)
    + sudo_group: the distro's admin group
    + extra_groups: groups other parts of vpskit put the user in (``docker`` when configured)

    **Example:**

    .. code:: python

        deploy_user(config.deploy_user, config.public_keys())
    """
    server.user(
        name=f"User {user.name}",
        user=user.name,
        shell=user.shell,
        home=f"/home/{user.name}",
        groups=[sudo_group, *user.groups, *[g for g in extra_groups if g not in user.groups]],
        create_home=True,
        public_keys=public_keys,
        delete_keys=True,
    )
    checked_file(
        name=f"Sudo rights for {user.name}",
        dest=sudoers_path(user.name),
        content=render("sudoers.j2", user=user.name, nopasswd=user.passwordless_sudo),
        validate="visudo -cf {path}",
        mode="440",
    )
