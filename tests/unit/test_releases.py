"""Release decisions: what a run does with a venv app's code given the AppRelease fact, and what vpskit-app picks and keeps."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
from pyinfra.api import OperationError

from operations.appspecs import compose_spec
from operations.checkout import AppPaths, GitCheckout, git_checkout
from operations.compose import compose_settings, compose_stamp_keys, recorded, up_command
from operations.config import App
from operations.releases import AppRelease, Build, activate_command, build_command, fetch_command, release_built, release_fetched
from operations.revision import is_commit, release_decision
from tests.unit.hoststub import run_op

ROOT = Path(__file__).resolve().parents[2]
A, B, C = "a" * 40, "b" * 40, "c" * 40


def state(**given) -> dict:
    return {"live": "", "deployed": "", "target": "", "legacy": False, "skipped": False, "error": "", "python": "", **given}


# ------------------------------------------------------------------ release_decision


def test_a_host_without_the_app_deploys_it():
    assert release_decision("shop", "main", None).action == "deploy"


def test_an_in_place_checkout_is_moved_to_releases_and_the_run_says_so():
    d = release_decision("shop", "main", state(legacy=True, target=A))
    assert d.action == "deploy" and d.say == "app shop: moving the in-place checkout to releases"


def test_the_live_release_of_the_configured_commit_is_left_alone():
    d = release_decision("shop", "main", state(live=A[:12], deployed=A, target=A))
    assert d.action == "none" and d.say == ""


def test_a_live_release_on_another_python_is_rebuilt_for_the_configured_one():
    d = release_decision("shop", "main", state(live=A[:12], deployed=A, target=A, python="3.12"), "3.13")
    assert d.action == "rebuild" and d.say == f"app shop: release {A[:12]} runs Python 3.12; rebuilding it for Python 3.13"
    assert release_decision("shop", "main", state(live=A[:12], deployed=A, target=A, python="3.13"), "3.13").action == "none"
    fetch = fetch_command(build(rebuild=True))
    assert "git clone --quiet --shared --no-checkout repo.git" in fetch and 'if [ ! -f "releases/' not in fetch


def test_a_moved_branch_deploys_its_new_commit_quietly():
    assert release_decision("shop", "main", state(live=A[:12], deployed=A, target=B)) == release_decision("shop", "main", None)


def test_a_rollback_on_the_host_is_kept_while_the_branch_still_points_at_what_was_rolled_back_from():
    d = release_decision("shop", "main", state(live=A[:12], deployed=B, target=B))
    assert d.action == "keep"
    assert d.say.startswith(f"app shop: live release {A[:12]} differs from main ({B[:12]}): it was rolled back on the host")
    assert f"vpskit-app rollback shop {B[:12]}" in d.say


def test_a_rollback_on_the_host_gives_way_to_a_new_commit_and_the_run_says_so():
    d = release_decision("shop", "main", state(live=A[:12], deployed=B, target=C))
    assert d.action == "deploy"
    assert d.say == f"app shop: live release {A[:12]} was rolled back on the host; main now points at {C[:12]}: deploying it"


def test_a_pinned_commit_not_fetched_yet_is_deployed():
    assert release_decision("shop", "1234abcd", state(live=A[:12], deployed=A)).action == "deploy"


def test_a_branch_the_repo_does_not_have_fails_naming_the_app():
    with pytest.raises(OperationError, match="app shop: the repo has no branch or tag 'nope'"):
        release_decision("shop", "nope", state(live=A[:12], deployed=A))


def test_an_unreadable_repo_fails_naming_the_app():
    with pytest.raises(OperationError, match="app shop: cannot read its repo: denied"):
        release_decision("shop", "main", state(live=A[:12], error="denied"))


def test_a_deploy_key_not_yet_on_the_host_deploys_and_resolves_the_branch_there():
    assert release_decision("shop", "main", state(live=A[:12], skipped=True)).action == "deploy"


@pytest.mark.parametrize(("ref", "commit"), [("3f2c0a1", True), (A, True), ("main", False), ("v1.2", False), ("abc", False)])
def test_a_revision_of_7_to_40_hex_digits_is_a_commit(ref, commit):
    assert is_commit(ref) is commit


# ------------------------------------------------------------------ the fact


def test_the_fact_asks_the_remote_for_a_branch_and_the_own_clone_for_a_commit():
    fact = AppRelease()
    branch = fact.command("/srv/apps/shop", "file:///r.git", "main", "appuser")
    assert "ls-remote" in branch and "rev-parse" not in branch
    commit = fact.command("/srv/apps/shop", "file:///r.git", "3f2c0a1", "appuser")
    assert "ls-remote" not in commit and "rev-parse --verify -q '3f2c0a1^{commit}'" in commit


def test_the_fact_reads_live_deployed_and_the_peeled_tag():
    out = ["live=3f2c0a1b9d8e", f"deployed={A}", "legacy=1", f"remote={B}\trefs/tags/v1", f"remote={C}\trefs/tags/v1^{{}}"]
    assert AppRelease().process(out) == state(live="3f2c0a1b9d8e", deployed=A, target=C, legacy=True)


def test_the_fact_runs_on_a_host_without_the_app_and_says_none(tmp_path):
    command = AppRelease().command(str(tmp_path / "absent"), "file:///r.git", "3f2c0a1", "appuser")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert out == ""


# ------------------------------------------------------------------ commands


def build(**given) -> Build:
    return Build(**{"name": "shop", "root": "/srv/apps/shop", "repo": "file:///r.git", "ref": "main", "user": "appuser",
                    "python": "/usr/bin/python3.12", "python_version": "3.12", **given})  # fmt: skip


def test_a_complete_release_of_the_commit_is_reused_and_a_new_one_built_aside_then_moved_in():
    fetch = build_command_parts()[0]
    assert 'echo "$C" > .vpskit-next' in fetch
    assert 'if [ ! -f "releases/$(echo $C | cut -c1-12)/.vpskit-release" ]; then git clone --quiet --shared' in fetch
    built = build_command_parts()[1]
    assert built.startswith(
        "cd /srv/apps/shop && C=$(cat .vpskit-next) && D=releases/$(echo $C | cut -c1-12) && if [ -d /srv/apps/shop/releases/.building ]; then"
    )
    assert built.index("/.vpskit-release") < built.index('mv /srv/apps/shop/releases/.building "$D"')
    # The venv is keyed by the install key and reused when its stamp matches.
    assert 'V=$(echo "$K" | sha256sum | cut -c1-16)' in built
    assert 'if [ "$(cat /srv/apps/shop/venvs/$V/.vpskit-requirements 2>/dev/null)" != "$K" ]' in built


def build_command_parts(**given) -> tuple[str, str]:
    return fetch_command(build(**given)), build_command(build(**given))


def test_shared_paths_are_linked_into_each_release_and_an_in_place_copy_moves_there_once():
    command = build_command(build(shared=("instance",), app_dir="backend"))
    assert "[ -d src/backend/instance ] && mv src/backend/instance shared/instance" in command
    assert "ln -s /srv/apps/shop/shared/instance /srv/apps/shop/releases/.building/backend/instance" in command


def test_the_switch_records_the_release_and_restarts_only_when_the_unit_or_env_changed():
    plain = activate_command("shop", "/srv/apps/shop", restart=False, daemon_reload=False)
    assert plain == '/usr/local/bin/vpskit-app activate shop "$(cat /srv/apps/shop/.vpskit-next)" --record'
    changed = activate_command("shop", "/srv/apps/shop", restart=True, daemon_reload=True, legacy=True)
    assert changed.startswith("systemctl daemon-reload && ") and "--record --restart" in changed
    assert changed.endswith("mv /srv/apps/shop/src /srv/apps/shop/src.before-releases")


# ------------------------------------------------------------------ vpskit-app


def vpskit_app():
    loader = importlib.machinery.SourceFileLoader("vpskit_app", str(ROOT / "files" / "vpskit-app"))
    spec = importlib.util.spec_from_loader("vpskit_app", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def app_root(tmp_path: Path, builds: dict[str, str], live: str, history: list[str] = ()) -> dict:
    """A fake app directory: releases with their markers and venv links, ``current``, the switch log."""
    root = tmp_path / "shop"
    for commit, built in builds.items():
        d = root / "releases" / commit[:12]
        d.mkdir(parents=True)
        (d / ".vpskit-release").write_text(f"commit={commit}\nbuilt={built}\n")
        venv = root / "venvs" / f"v-{commit[:3]}"
        venv.mkdir(parents=True, exist_ok=True)
        os.symlink(f"../../venvs/v-{commit[:3]}", d / ".venv")
    os.symlink(f"releases/{live[:12]}", root / "current")
    (root / "releases.log").write_text("".join(f"2026-01-0{i + 1}T00:00:00Z {c} deploy\n" for i, c in enumerate(history)))
    return {"name": "shop", "kind": "venv", "root": str(root), "keep": 2}


def test_rollback_without_a_commit_picks_the_release_live_before_the_current_one(tmp_path):
    m = vpskit_app()
    s = app_root(tmp_path, {A: "2026-01-01", B: "2026-01-02", C: "2026-01-03"}, live=B, history=[A, C, B])
    assert m.pick(s, m.releases(s), None, B)["commit"] == C


def test_rollback_to_a_commit_prefix_and_to_an_unknown_one(tmp_path):
    m = vpskit_app()
    s = app_root(tmp_path, {A: "2026-01-01", B: "2026-01-02"}, live=B)
    assert m.pick(s, m.releases(s), "aaaa", B)["commit"] == A
    with pytest.raises(m.Failed, match="app shop: no release of commit 'dead' \\(kept: bbbbbbbbbbbb, aaaaaaaaaaaa\\)"):
        m.pick(s, m.releases(s), "dead", B)


def test_prune_keeps_the_newest_releases_and_the_live_one_and_drops_unused_venvs(tmp_path):
    m = vpskit_app()
    s = app_root(tmp_path, {A: "2026-01-01", B: "2026-01-02", C: "2026-01-03"}, live=A)
    s["keep"] = 1
    assert m.prune(s) == [B[:12]]
    assert sorted(os.listdir(tmp_path / "shop" / "releases")) == [A[:12], C[:12]]
    assert sorted(os.listdir(tmp_path / "shop" / "venvs")) == ["v-aaa", "v-ccc"]


def test_a_release_still_being_built_is_not_listed(tmp_path):
    m = vpskit_app()
    s = app_root(tmp_path, {A: "2026-01-01"}, live=A)
    (tmp_path / "shop" / "releases" / ".building").mkdir()
    assert [r["commit"] for r in m.releases(s)] == [A]


# ------------------------------------------------------------------ operations


def test_a_release_is_built_only_when_the_decision_is_to_deploy_and_a_kept_rollback_is_said():
    keep = release_decision("shop", "main", state(live=A[:12], deployed=B, target=B))
    for op in (release_fetched, release_built):
        done = run_op(op, {}, build=build(), decision=keep)
        assert done.is_noop and done.said == ([keep.say] if op is release_fetched else [])
        done = run_op(op, {}, build=build(), decision=release_decision("shop", "main", None))
        assert len(done.commands) == 1 and done.commands[0].startswith("sudo -u appuser -H sh -c ")


def checkout_state(head: str, remote: str, deployed: str) -> dict:
    return {"head": head, "url": "file:///r.git", "remote": remote, "deployed": deployed, "error": "", "skipped": False}


def test_a_compose_checkout_rolled_back_on_the_host_stays_while_the_branch_has_not_moved():
    args = dict(repo="file:///r.git", ref="main", dest="/srv/apps/memo/src", user="u", deployed_file="/srv/apps/memo/.vpskit-deployed", app_name="memo")  # fmt: skip
    done = run_op(git_checkout, {GitCheckout: checkout_state(A, B, B)}, **args)
    assert done.is_noop and "app memo: live release aaaaaaaaaaaa differs from main (bbbbbbbbbbbb)" in done.said[0]
    done = run_op(git_checkout, {GitCheckout: checkout_state(A, C, B)}, **args)
    assert done.said == [f"app memo: live release {A[:12]} was rolled back on the host; main now points at {C[:12]}: deploying it"]
    assert "reset --quiet --hard FETCH_HEAD" in done.commands[0]


def test_a_compose_app_records_each_up_and_gives_vpskit_app_its_up_and_stamps():
    spec = compose_spec(App(name="memo", port=5003, kind="compose", domains=("memo.example.com",), repo="https://g.example/m.git",
                            compose_file="compose.yaml", service="web", migrate="python3 migrate.py"))  # fmt: skip
    paths = AppPaths("memo", "/srv/apps", "/var/log/apps")
    assert recorded(paths) == (
        "echo \"$(date -u +%Y-%m-%dT%H:%M:%SZ) $(git -c safe.directory='*' -C /srv/apps/memo/src rev-parse HEAD) deploy\" "
        ">> /srv/apps/memo/releases.log && echo $(git -c safe.directory='*' -C /srv/apps/memo/src rev-parse HEAD) > /srv/apps/memo/.vpskit-deployed"
    )
    settings = json.loads(compose_settings(spec, paths, "appuser"))
    keys = compose_stamp_keys(spec, paths)
    assert settings["up"] == up_command(spec, paths)
    assert settings["stamps"] == {keys["up"][0]: keys["up"][1], keys["migrate"][0]: keys["migrate"][1]}


def test_vpskit_app_lists_a_compose_apps_commits_newest_first_once_each(tmp_path):
    m = vpskit_app()
    (tmp_path / "releases.log").write_text(
        f"2026-01-01T00:00:00Z {A} deploy\n2026-01-02T00:00:00Z {B} deploy\n2026-01-03T00:00:00Z {A} rollback\n"
    )
    assert [c["commit"] for c in m.compose_commits({"root": str(tmp_path)})] == [A, B]


def test_prune_counts_a_release_by_when_it_was_last_live_so_a_pinned_old_one_outlives_a_newer_broken_build(tmp_path):
    m = vpskit_app()
    # A built first and live again last (a pin back); B and C built later, C never went live.
    s = app_root(tmp_path, {A: "2026-01-01T00:00:00Z", B: "2026-01-02T00:00:00Z", C: "2026-01-03T00:00:00Z"}, live=B, history=[B, A, B])
    (tmp_path / "shop" / "releases.log").write_text(
        f"2026-01-02T00:00:00Z {B} deploy\n2026-01-04T00:00:00Z {A} deploy\n2026-01-05T00:00:00Z {B} deploy\n"
    )
    s["keep"] = 2
    assert m.prune(s) == [C[:12]]
    assert m.pick(s, m.releases(s), None, B)["commit"] == A
