"""The deploy lock and log: its shell run for real with sh on files in tmp_path, and the controller's decisions on given answers."""

from __future__ import annotations

import subprocess

import pytest
from pyinfra.api import OperationError
from pyinfra.context import ctx_state

import operations.deploylock as dl
from tests.unit.hoststub import fact, on_stub, run_op


@pytest.fixture
def where(tmp_path):
    """The lock's directory and the log file, under tmp_path; ``sh(command)`` runs a command and gives its output lines."""

    class Where:
        lock_dir = str(tmp_path / "run")
        log_file = str(tmp_path / "log" / "deploys.log")
        lock = tmp_path / "run" / "deploy.lock"
        log = tmp_path / "log" / "deploys.log"

        @staticmethod
        def sh(command: str) -> list[str]:
            proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
            assert proc.returncode == 0, proc.stderr
            return proc.stdout.splitlines()

    return Where


def git(repo, *args) -> str:
    cmd = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(repo), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "shop" / "src"
    r.mkdir(parents=True)
    git(r, "init", "-q")
    git(r, "commit", "-q", "--allow-empty", "-m", "one")
    return r


def take(where, token="t1", pid=4321, apps=None, takeover=""):
    lines = where.sh(dl.take_command(token, "alice@laptop", pid, apps or {}, takeover, where.lock_dir, where.log_file))
    return lines, dl.parse_take(lines)


def release(where, token="t1", result="ok", step=""):
    return where.sh(dl.release_command(token, result, step, where.lock_dir, where.log_file))


def write_record(where, token: str, session: str) -> None:
    where.lock.parent.mkdir(exist_ok=True)
    where.lock.write_text(f"token={token}\nby=bob@desk\npid=77\nstarted=2026-01-02T03:04:05Z\nsession={session}\n")


def start_time(pid: int) -> str:
    return open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()[19]


# ------------------------------------------------------------------ the host side


def test_a_free_lock_is_taken_and_records_the_run_and_each_apps_commit(where, repo):
    lines, (taken, holder, dead) = take(where, apps={"shop": str(repo), "api": "/nowhere/src"})
    assert (taken, holder, dead) == (True, None, None)
    record = where.lock.read_text().splitlines()
    assert record[:3] == ["token=t1", "by=alice@laptop", "pid=4321"]
    assert record[3].startswith("started=20") and record[4].startswith("session=")
    assert record[5:] == [f"app.shop={git(repo, 'rev-parse', 'HEAD')} {repo}", "app.api=- /nowhere/src"]
    assert oct(where.lock.parent.stat().st_mode & 0o777) == "0o700" and oct(where.lock.stat().st_mode & 0o777) == "0o600"


def test_a_live_holder_keeps_the_lock_and_is_named(where):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        write_record(where, "old", f"{sleeper.pid} {start_time(sleeper.pid)}")
        _, (taken, holder, dead) = take(where)
        assert not taken and dead is None
        assert (holder.token, holder.by, holder.pid, holder.started, holder.liveness) == (
            "old",
            "bob@desk",
            77,
            "2026-01-02T03:04:05Z",
            "alive",
        )
        assert holder.describe() == "bob@desk (PID 77 there), started 2026-01-02T03:04:05Z"
        assert "token=old" in where.lock.read_text() and not where.log.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_holder_whose_session_ended_is_logged_unfinished_and_taken_over(where, repo):
    sleeper = subprocess.Popen(["sleep", "30"])
    session = f"{sleeper.pid} {start_time(sleeper.pid)}"
    sleeper.kill()
    sleeper.wait()
    write_record(where, "old", session)
    with where.lock.open("a") as f:
        f.write(f"app.shop=- {repo}\n")
    _, (taken, holder, dead) = take(where, token="new")
    assert taken and holder is None and (dead.token, dead.liveness) == ("old", "dead")
    assert "token=new" in where.lock.read_text()
    (line,) = where.log.read_text().splitlines()
    head = git(repo, "rev-parse", "HEAD")
    assert line.endswith(f" by=bob@desk pid=77 start=2026-01-02T03:04:05Z result=unfinished apps=shop:-..{head[:12]}")


def test_a_reused_pid_is_not_the_holders_session(where):
    write_record(where, "old", "1 12345")  # PID 1 lives, but started at another time
    _, (taken, _, dead) = take(where)
    assert taken and dead.liveness == "dead"


def test_a_holder_without_a_session_is_left_to_the_controller_and_taken_over_only_by_its_token(where):
    write_record(where, "old", "")
    _, (taken, holder, _) = take(where)
    assert not taken and holder.liveness == "unknown"
    _, (taken, _, _) = take(where, takeover="other")
    assert not taken
    _, (taken, _, dead) = take(where, takeover="old")
    assert taken and dead.token == "old"


def test_release_logs_the_run_with_its_app_changes_and_frees_the_lock(where, repo):
    before = git(repo, "rev-parse", "HEAD")
    take(where, apps={"shop": str(repo), "api": "/nowhere/src"})
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    after = git(repo, "rev-parse", "HEAD")
    assert release(where) == ["released"]
    assert not where.lock.exists()
    (line,) = where.log.read_text().splitlines()
    end, by, pid, start, result, apps = line.split(" ")
    assert (by, pid, result) == ("by=alice@laptop", "pid=4321", "result=ok")
    assert start[len("start=") :] <= end
    assert apps == f"apps=shop:{before[:12]}..{after[:12]}"
    assert oct(where.log.stat().st_mode & 0o777) == "0o640"


def test_an_unchanged_run_logs_no_app_and_a_failed_one_names_its_step(where, repo):
    take(where, apps={"shop": str(repo)})
    release(where, result="failed", step='Base system | Install "x"; rm -rf /')
    (line,) = where.log.read_text().splitlines()
    assert line.endswith(' result=failed apps=none step="Base system | Install x rm -rf /"')


def test_release_of_a_lock_another_run_took_over_changes_nothing(where):
    take(where, token="theirs")
    assert release(where, token="mine") == ["lost"]
    assert "token=theirs" in where.lock.read_text() and not where.log.exists()


def test_the_log_keeps_one_older_file_past_its_size_cap(where):
    where.log.parent.mkdir()
    where.log.write_text("x" * dl.LOG_MAX_BYTES)
    take(where)
    release(where)
    assert where.log.read_text().count("\n") == 1
    assert (where.log.parent / "deploys.log.1").stat().st_size == dl.LOG_MAX_BYTES


def test_the_dry_run_fact_reads_the_holder_without_taking(where):
    write_record(where, "old", "")
    command = dl.DeployLockHolder().command(where.lock_dir)
    holder = dl.parse_holder(dl.DeployLockHolder().process(where.sh(command)))
    assert (holder.token, holder.liveness) == ("old", "unknown")
    assert where.lock.read_text().startswith("token=old")
    where.lock.unlink()
    assert dl.parse_holder(where.sh(command)) is None
    where.lock.parent.rmdir()
    assert dl.parse_holder(where.sh(command)) is None
    assert not where.lock.parent.exists()  # a dry run leaves nothing behind


# ------------------------------------------------------------------ the controller side

ALIVE = ["held", "token=old", "by=bob@desk", "pid=77", "started=2026-01-02T03:04:05Z", "session=9 99", "liveness=alive"]


def test_parse_take_tells_taken_held_and_taken_over():
    assert dl.parse_take(["taken"]) == (True, None, None)
    taken, holder, dead = dl.parse_take(ALIVE)
    assert not taken and holder.by == "bob@desk" and dead is None
    taken, holder, dead = dl.parse_take(["took-over", *ALIVE[1:-1], "taken"])
    assert taken and dead.pid == 77
    with pytest.raises(OperationError, match="unexpected answer"):
        dl.parse_take(["sh: 1: flock: not found"])


def test_a_dry_run_is_told_by_pyinfras_command_line():
    assert dl.is_dry_run(["pyinfra", "--dry", "inventory.py", "deploy.py"])
    assert not dl.is_dry_run(["pyinfra", "-y", "inventory.py", "deploy.py"])


def test_only_a_sessionless_holder_of_this_controller_with_its_pid_gone_is_dead_here():
    holder = dl.Holder("old", "bob@desk", 77, "then", "unknown")
    assert dl.dead_here(holder, "alice@desk", alive=lambda pid: False)
    assert not dl.dead_here(holder, "alice@desk", alive=lambda pid: True)
    assert not dl.dead_here(holder, "alice@laptop", alive=lambda pid: False)
    assert not dl.dead_here(dl.Holder("old", "bob@desk", 77, "then", "alive"), "alice@desk", alive=lambda pid: False)


@pytest.fixture
def host_answers(monkeypatch):
    """The lock commands' answers, in order; the commands asked for, and the callback handlers added."""

    class Answers:
        queue: list[list[str]] = []
        commands: list[str] = []
        handlers: list = []

    def run(command):
        Answers.commands.append(command)
        return Answers.queue.pop(0)

    monkeypatch.setattr(dl, "_run", run)
    monkeypatch.setattr(dl, "controller_name", lambda: "alice@laptop")
    monkeypatch.setattr(dl.time, "sleep", lambda s: None)
    return Answers


def taken_on_stub(answers, facts=None, **arguments):
    with on_stub(facts) as stub:
        ctx_state.get().add_callback_handler = answers.handlers.append
        return dl.deploy_lock_taken(**arguments), stub


def test_a_taken_lock_releases_itself_when_an_operation_fails(host_answers):
    host_answers.queue = [["taken"]]
    lock, _ = taken_on_stub(host_answers, apps={"shop": "/srv/apps/shop/src"})
    assert lock.holder == "alice@laptop" and not lock.released
    assert "app.%s=%s %s" in host_answers.commands[0] and "/srv/apps/shop/src" in host_answers.commands[0]
    (handler,) = host_answers.handlers
    assert isinstance(handler, dl._ReleaseOnFailure) and handler.lock is lock


def test_a_live_holder_stops_the_run_at_once_without_a_wait(host_answers):
    host_answers.queue = [ALIVE]
    with pytest.raises(OperationError, match=r"another deploy holds this host: bob@desk \(PID 77 there\), started 2026-01-02T03:04:05Z"):
        taken_on_stub(host_answers, wait=0)
    assert len(host_answers.commands) == 1 and not host_answers.handlers


def test_a_live_holder_is_waited_for_until_it_ends(host_answers):
    host_answers.queue = [ALIVE, ALIVE, ["taken"]]
    lock, _ = taken_on_stub(host_answers, wait=60)
    assert lock is not None and len(host_answers.commands) == 3


def test_a_sessionless_holder_from_this_machine_whose_pid_is_gone_is_taken_over_by_its_token(host_answers, monkeypatch):
    monkeypatch.setattr(dl, "pid_alive", lambda pid: False)
    unknown = [*ALIVE[:-1], "liveness=unknown"]
    unknown[2] = "by=bob@laptop"
    host_answers.queue = [unknown, ["took-over", *unknown[1:-1], "taken"]]
    lock, _ = taken_on_stub(host_answers, wait=0)
    assert lock is not None
    assert "!= old ]" in host_answers.commands[1] and "!= - ]" in host_answers.commands[0]


def test_a_dry_run_takes_nothing_and_names_a_live_holder(host_answers, caplog):
    lock, stub = taken_on_stub(host_answers, {fact(dl.DeployLockHolder): ALIVE[1:]}, dry=True)
    assert lock is None and host_answers.commands == [] and not host_answers.handlers
    assert "a deploy by bob@desk (PID 77 there), started 2026-01-02T03:04:05Z holds the host" in caplog.text
    assert stub.asked == ["DeployLockHolder"]


def test_release_is_no_change_and_runs_only_when_pyinfra_executes(host_answers):
    lock = dl.DeployLock("t1", "alice@laptop")
    done = run_op(dl.deploy_lock_released, lock=lock)
    assert done.is_noop and host_answers.commands == [] and not lock.released  # pyinfra detecting changes
    host_answers.queue = [["released"]]
    with on_stub() as stub:
        ctx_state.get().is_executing = True
        assert list(dl.deploy_lock_released._inner(lock=lock)) == []
    assert lock.released and stub.noops == [f"deploy logged in {dl.LOG_FILE}, lock released"]
    (command,) = host_answers.commands
    assert 'append "$(entry "$L" ok ' in command and "= t1 ]" in command
    assert run_op(dl.deploy_lock_released, lock=None).is_noop


def test_a_failing_operation_on_the_locked_host_logs_the_run_failed_and_frees_the_lock(host_answers):
    from types import SimpleNamespace

    lock, locked, other = dl.DeployLock("t1", "alice@laptop"), object(), object()
    ops = {"a": {"_ignore_errors": False}, "b": {"_ignore_errors": True}}
    fake_state = SimpleNamespace(
        get_op_data_for_host=lambda host, op: SimpleNamespace(global_arguments=ops[op]),
        get_op_meta=lambda op: SimpleNamespace(names={f"Step {op}"}),
    )
    handler = dl._ReleaseOnFailure(lock, locked)
    handler.operation_host_error(fake_state, other, "a")
    handler.operation_host_error(fake_state, locked, "b")  # an ignored error: the run goes on
    assert host_answers.commands == [] and not lock.released
    host_answers.queue = [["released"]]
    with on_stub():
        handler.operation_host_error(fake_state, locked, "a")
    (command,) = host_answers.commands
    assert lock.released and 'append "$(entry "$L" failed \' step="Step a"\')"' in command
