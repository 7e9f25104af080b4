"""Config files that are checked before they go live (pyinfra 3 has no ``validate=``)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from io import BytesIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation

from .facts import FileState
from .render import sha256
from .snapshot import planned, snapshot_fact


def install_checked_command(dest: str, staged: str, validate: str | None, mode: str, user: str, group: str) -> str:
    """The shell that moves ``staged`` to ``dest`` only if ``validate`` passes.

    ``validate`` containing ``{path}`` checks the staged file alone (``visudo -cf {path}``)
    before it replaces ``dest``. Without ``{path}`` it checks the whole live config
    (``nginx -t``, ``sshd -t``): the new file goes in, and if the check fails the
    previous file (or none) is put back and the command fails with the checker's error.
    """
    d, s = shlex.quote(dest), shlex.quote(staged)
    prep = f"chmod {mode} {s} && chown {user}:{group} {s}"
    if validate is None:
        return f"{prep} && mv -f {s} {d}"
    if "{path}" in validate:
        check = validate.replace("{path}", s)
        return f"{prep} && {{ {check} || {{ rm -f {s}; exit 1; }}; }} && mv -f {s} {d}"
    # Kept beside the staged file, not beside dest: a config directory read as a
    # whole (nginx's sites-enabled/*) would load a backup there as live config.
    backup = shlex.quote(staged + ".prev")
    # Quoted as a whole: dest or validate may hold quotes, and backticks must stay literal.
    message = shlex.quote(f"vpskit: {dest} rejected by `{validate}`; previous version restored")
    return (
        f"{prep} && "
        f"if [ -e {d} ]; then cp -p {d} {backup}; had=1; else had=0; fi && "
        f"mv -f {s} {d} && "
        f"if {validate}; then rm -f {backup}; else "
        f"if [ $had = 1 ]; then mv -f {backup} {d}; else rm -f {d}; fi; "
        f"echo {message} >&2; exit 1; fi"
    )


@planned(lambda dest, **_: [(FileState, {"path": dest})])
@operation()
def checked_file(
    dest: str,
    content: str | bytes | Callable[[], str | bytes],
    validate: str | None = None,
    mode: str = "644",
    user: str = "root",
    group: str = "root",
):
    """
    Ensure a file has the given content, checked by a validator before it goes live.

    + dest: remote path of the file
    + content: the full file content (never printed: may hold secrets), or a function returning it, called when
      the operation runs: for content built from what earlier operations of the same run put on the host
    + validate: command that must pass; ``{path}`` is replaced by the staged file
      (check the file alone), without it the command checks the live config and a
      failure restores the previous file
    + mode: octal mode, as ``stat -c %a`` prints it
    + user: owner
    + group: group

    **Example:**

    .. code:: python

        checked_file(
            name="Sudoers for appuser",
            dest="/etc/sudoers.d/90-vpskit-appuser",
            content="appuser ALL=(ALL:ALL) NOPASSWD:ALL\\n",
            validate="visudo -cf {path}",
            mode="440",
        )
    """
    if callable(content):
        content = content()
    data = content.encode() if isinstance(content, str) else content
    current = snapshot_fact(FileState, path=dest)
    want_hash = sha256(data)
    mode = str(mode).lstrip("0") or "0"

    if current and current["sha256"] == want_hash:
        if (current["mode"], current["user"], current["group"]) != (mode, user, group):
            yield StringCommand(f"chmod {mode} {shlex.quote(dest)} && chown {user}:{group} {shlex.quote(dest)}")
        else:
            host.noop(f"{dest} is up to date")
        return

    # Staged outside the config directory: a run that dies here leaves nothing
    # that a service would read as config.
    staged = host.get_temp_filename(f"vpskit-staged:{dest}:{want_hash}")
    yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=host.get_temp_filename(staged))
    yield StringCommand(install_checked_command(dest, staged, validate, mode, user, group))
