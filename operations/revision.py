"""Which commit a run deploys for an app: the one its config names, or the one it was rolled back to on the host.

Shared by the venv apps' releases (``releases``) and the compose apps' in-place checkout (``checkout.git_checkout``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api import OperationError

SHA = re.compile(r"^[0-9a-f]{7,40}$")


def is_commit(ref: str) -> bool:
    """A revision that names a commit (7 to 40 hex digits) rather than a branch or tag."""
    return bool(SHA.match(ref))


@dataclass(frozen=True)
class Decision:
    """What a run does with an app's code: ``action`` is "deploy", "none" or "keep"; ``say`` is printed when set."""

    action: str
    say: str = ""


def release_decision(name: str, ref: str, state: dict | None, python: str = "") -> Decision:
    """
    What to do with app ``name`` whose config asks for ``ref``, given the ``AppRelease`` fact.

    A release rolled back on the host (``vpskit-app rollback``) is kept while ``ref``
    still points at the commit that was rolled back from; once ``ref`` moves, its
    new commit is deployed. Either way the run says so. A live release whose venv
    runs another Python than ``python`` is rebuilt ("rebuild").
    """
    if not state or not state["live"]:
        return Decision("deploy", f"app {name}: moving the in-place checkout to releases" if state and state["legacy"] else "")
    if state["error"]:
        raise OperationError(f"app {name}: cannot read its repo: {state['error']}")
    target, live, deployed = state["target"], state["live"], state["deployed"]
    if not target:
        if not is_commit(ref) and not state["skipped"]:
            raise OperationError(f"app {name}: the repo has no branch or tag {ref!r}")
        return Decision("deploy")  # a commit not fetched yet, or a deploy key only now on the host
    if target[:12] == live:
        if python and state.get("python") and state["python"] != python:
            return Decision("rebuild", f"app {name}: release {live} runs Python {state['python']}; rebuilding it for Python {python}")
        return Decision("none")
    if deployed and target == deployed:
        return Decision(
            "keep",
            f"app {name}: live release {live} differs from {ref} ({target[:12]}): it was rolled back on the host; "
            f"keeping it until {ref} moves (vpskit-app rollback {name} {target[:12]} to go back to it)",
        )
    if deployed and live != deployed[:12]:
        return Decision(
            "deploy", f"app {name}: live release {live} was rolled back on the host; {ref} now points at {target[:12]}: deploying it"
        )
    return Decision("deploy")


_said: set[tuple[str, str]] = set()


def say(decision: Decision) -> None:
    """Print what the run does about a rollback made on the host, once per host (pyinfra may evaluate an operation twice)."""
    if decision.say and (host.name, decision.say) not in _said:
        _said.add((host.name, decision.say))
        host.log(decision.say, logger.warning)
