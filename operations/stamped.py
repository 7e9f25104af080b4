"""Steps keyed by a stamp file: run a command when its key (a requirements hash, a commit) differs from the last good run.

The stored and current keys of all of an app's stamped steps are read in one
``Stamps`` fact; a step runs when they differ, or when what it depends on (the
checkout) changes in this run, and records its key only on success.
"""

from __future__ import annotations

import hashlib
import shlex

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation

from .snapshot import snapshot_fact


def as_user(user: str, command: str, secret_env: str = "") -> str:
    """``command`` run by ``user`` with its own HOME (the run itself is root).

    With ``secret_env`` (a root-only env file holding ``DATABASE_URL``) root reads
    the file and hands the URL to ``user`` in the environment, never on a command line.
    """
    run = f"sudo -u {user} -H sh -c {shlex.quote(command)}"
    if not secret_env:
        return run
    return f"set -a && . {shlex.quote(secret_env)} && set +a && sudo --preserve-env=DATABASE_URL -u {user} -H sh -c {shlex.quote(command)}"


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Stamps(FactBase):
    """
    Returns, for each named stamp, the key stored in its file and the key computed now.

    ``stamps`` maps a name to (stamp file, shell that prints the current key), as a dict or as its items.

    .. code:: python

        {"requirements": ("ab12… gunicorn", "ab12… gunicorn"), "migrate": ("", "3f2c…")}
    """

    def command(self, stamps):
        parts = []
        for name, (stamp, key_cmd) in sorted(dict(stamps).items()):
            parts.append(f'echo "{name}=$(cat {shlex.quote(stamp)})|$({key_cmd})"')
        return "{ " + "; ".join(parts) + "; } 2>/dev/null"

    def process(self, output):
        result = {}
        for line in output:
            name, _, rest = line.partition("=")
            stored, _, current = rest.partition("|")
            result[name] = (stored.strip(), current.strip())
        return result


def stamped_command(command: str, key_cmd: str, stamp: str, cwd: str) -> str:
    """Run ``command`` in ``cwd`` unless ``stamp`` holds the current key; record the key on success."""
    s = shlex.quote(stamp)
    return (
        f'cd {shlex.quote(cwd)} && k="$({key_cmd})" && '
        f'if [ "$(cat {s} 2>/dev/null)" != "$k" ]; then {{ {command} ; }} && printf \'%s\\n\' "$k" > {s}; fi'
    )


@operation()
def stamped_step(
    command: str, key_cmd: str, stamp: str, cwd: str, user: str, known: tuple[str, str], force: bool = False, secret_env: str = ""
):
    """
    Ensure ``command`` has run for the current key (a requirements hash, a commit).

    + command: shell run as ``user`` in ``cwd``
    + key_cmd: shell printing the current key
    + stamp: file recording the key of the last successful run
    + cwd: working directory
    + user: who runs it
    + known: (stored, current) keys as read before the run (``Stamps`` fact)
    + force: the key will change in this run (the checkout moves), so run
    + secret_env: root-only env file whose ``DATABASE_URL`` the command gets ('' for none)

    **Example:**

    .. code:: python

        stamped_step(command="venv/bin/pip install -r requirements.txt", key_cmd="sha256sum requirements.txt",
                     stamp="/srv/apps/shop/venv/.vpskit-requirements", cwd="/srv/apps/shop", user="appuser",
                     known=stamps["requirements"])
    """
    stored, current = known
    if not force and stored and stored == current:
        host.noop(f"{stamp} is current")
        return
    yield StringCommand(as_user(user, stamped_command(command, key_cmd, stamp, cwd), secret_env))


def stamped_steps(app_name: str, plan: list[tuple], keys: dict[str, tuple[str, str]], cwd: str, user: str) -> list:
    """
    A ``stamped_step`` for each entry of ``plan`` whose stamp is in ``keys``, in the plan's order.

    + app_name: the app (names the operations)
    + plan: (stamp, label, command, also run when, secret env file or '') in the order they must run
    + keys: stamp name -> (stamp file, shell printing the current key), from ``stamp_keys``
    + cwd: working directory of the commands
    + user: who runs them

    The stored and current keys of all of them are read in one ``Stamps`` fact, with the
    run's other facts while the host is unchanged (``snapshot_fact``).
    """
    known = snapshot_fact(Stamps, stamps=tuple(sorted(keys.items())))
    return [
        stamped_step(
            name=f"{app_name}: {label}",
            command=command,
            key_cmd=keys[stamp][1],
            stamp=keys[stamp][0],
            cwd=cwd,
            user=user,
            known=known[stamp],
            force=force,
            secret_env=secret_env,
        )
        for stamp, label, command, force, secret_env in plan
        if stamp in keys
    ]
