"""The deploy user: the admin who owns the apps and logs in after hardening."""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.facts.server import Users
from pyinfra.operations import server

from .facts import NamedUsers
from .render import render
from .snapshot import facts_through_snapshot
from .validated import checked_file


def sudoers_path(user: str) -> str:
    # sudo skips files in sudoers.d whose names contain a dot.
    return f"/etc/sudoers.d/90-vpskit-{user}"


def user_present(user: str, **kwargs):
    """pyinfra's ``server.user`` for ``user``, its facts (users, groups, home, keys) read with the run's others; of the accounts, only this one."""
    return facts_through_snapshot(server.user, {Users: (NamedUsers, {"users": (user,)})})(user=user, **kwargs)


@deploy("Deploy user")
def deploy_user(
    user: str,
    public_keys: list[str],
    shell: str = "/bin/bash",
    groups: list[str] = (),
    passwordless_sudo: bool = True,
    sudo_group: str = "sudo",
    extra_groups: list[str] = (),
):
    """
    Ensure the deploy user exists with sudo and exactly these SSH keys.

    + user: the user's name
    + public_keys: the public key lines for authorized_keys (.ssh 700, file 600)
    + shell: login shell
    + groups: more groups the user is in
    + passwordless_sudo: sudo without a password (the user has none)
    + sudo_group: the distro's admin group
    + extra_groups: system groups made here when missing, before the packages that own them
      (``docker``), so the user can join them now

    **Example:**

    .. code:: python

        deploy_user("appuser", ["ssh-ed25519 AAAA... me@laptop"], sudo_group="sudo")
    """
    for group in extra_groups:
        facts_through_snapshot(server.group)(name=f"{group} group", group=group, system=True)
    user_present(
        name=f"User {user}",
        user=user,
        shell=shell,
        home=f"/home/{user}",
        groups=[sudo_group, *groups, *[g for g in extra_groups if g not in groups]],
        create_home=True,
        public_keys=public_keys,
        delete_keys=True,
    )
    checked_file(
        name=f"Sudo rights for {user}",
        dest=sudoers_path(user),
        content=render("sudoers.j2", user=user, nopasswd=passwordless_sudo),
        validate="visudo -cf {path}",
        mode="440",
    )
