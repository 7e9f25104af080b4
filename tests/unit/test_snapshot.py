"""Facts read together: the combined command run for real with bash, the run's cache rules, and AptUpgradable's cache."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from pyinfra.api import FactBase, OperationError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Directory, File
from pyinfra.facts.server import Date, OsRelease, Users
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations.apt import APT_UPDATE_FILENAME

from operations import facts as facts_mod
from operations import snapshot, system
from operations.batched import apt_updated, directory_present, packages_installed, unit_running
from operations.factgroups import group_of
from operations.facts import AptUpgradable, FileState, NamedUsers
from operations.snapshot import Facts, parse_facts
from operations.system import _upgrade_facts, apt_upgraded
from tests.unit.hoststub import check_spec, fact, on_stub, run_op


def bash(command: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30, env=env)


class Fails(FactBase):
    def command(self):
        return "echo half; exit 3"


class NeedsMissingTool(FactBase):
    default = list

    def requires_command(self):
        return "no-such-tool-vpskit"

    def command(self):
        return "no-such-tool-vpskit --list"


def test_one_command_reads_each_fact_as_its_own_command_would(tmp_path):
    """Files present and missing, a failing fact (left out: read again on its own) and a missing tool (its default)."""
    present = tmp_path / "a file"
    present.write_text("x\n")
    wanted = (
        (FileState, (("path", str(present)),)),
        (FileState, (("path", str(tmp_path / "missing")),)),
        (Fails, ()),
        (NeedsMissingTool, ()),
    )
    batch = Facts()
    out = bash(batch.command(facts=wanted), tmp_path)
    assert out.returncode == 0, out.stderr
    values = batch.process(out.stdout.splitlines())
    alone = FileState().process(bash(FileState().command(str(present)), tmp_path).stdout.splitlines())
    assert values[0] == alone and values[0]["sha256"]
    assert values[1] is None
    assert 2 not in values
    assert values[3] == []


def test_a_fact_counts_only_with_its_own_status_line():
    """Output under a fact's mark is its own; without a zero status after it, the fact is left out."""
    lines = ["##vpskit-fact 0", "1", "##vpskit-fact 2", "##vpskit-fact status 0", "##vpskit-fact status 0"]
    facts = ((FileState, ()), (FileState, ()))
    assert parse_facts(lines, facts) == {}  # neither ended with status 0 under its own mark
    lines = ["##vpskit-fact 0", "abc", "700 root root", "##vpskit-fact status 0"]
    assert parse_facts(lines, ((FileState, ()),)) == {0: {"sha256": "abc", "mode": "700", "user": "root", "group": "root"}}


# ------------------------------------------------------------ the run's cache


class Meta:
    """An operation of this run that has executed: changed the host or not."""

    def __init__(self, changed: bool):
        self.operation_meta = SimpleNamespace(is_complete=lambda: True, did_change=lambda: changed)


# FileState of three files, each a value of its own.
FILES = {fact(FileState, path=p): {"sha256": p} for p in ("/a", "/b", "/c", "/z")}


def test_planned_facts_are_read_in_one_round_trip_while_the_host_is_unchanged():
    with on_stub(FILES) as host:
        for path in ("/a", "/b", "/c"):
            snapshot.plan(FileState, path=path)
        assert [snapshot.snapshot_fact(FileState, path=p)["sha256"] for p in ("/b", "/a", "/c")] == ["/b", "/a", "/c"]
    assert host.asked == ["Facts"]


def test_after_a_change_the_facts_still_to_come_are_read_again_together_never_from_before_it():
    with on_stub(FILES) as host:
        for path in ("/a", "/b", "/c"):
            snapshot.plan(FileState, path=path)
        snapshot.snapshot_fact(FileState, path="/a")
        host.ops["op1"] = Meta(changed=False)
        assert snapshot.snapshot_fact(FileState, path="/b") == {"sha256": "/b"}
        assert host.asked == ["Facts"]
        # An operation changes /b and /c: what was read before is not used again.
        host.ops["op2"] = Meta(changed=True)
        host.facts[fact(FileState, path="/b")] = {"sha256": "/b changed"}
        host.facts[fact(FileState, path="/c")] = {"sha256": "/c changed"}
        assert snapshot.snapshot_fact(FileState, path="/b") == {"sha256": "/b changed"}
        assert snapshot.snapshot_fact(FileState, path="/c") == {"sha256": "/c changed"}
        assert snapshot.snapshot_fact(FileState, path="/a") == {"sha256": "/a"}
    # /b leads a second read that takes /c and /a along.
    assert host.asked == ["Facts", "Facts"]


class SlowFact(FileState):
    slow = True


def test_a_slow_fact_is_not_taken_along_after_a_change_only_read_when_asked_for():
    slow_key = fact(SlowFact, path="/remote")
    with on_stub({**FILES, slow_key: {"sha256": "remote"}}) as host:
        snapshot.plan(FileState, path="/a")
        snapshot.plan(SlowFact, path="/remote")
        snapshot.plan(FileState, path="/b")
        snapshot.snapshot_fact(FileState, path="/a")
        host.ops["op1"] = Meta(changed=True)
        snapshot.snapshot_fact(FileState, path="/b")
        run = snapshot._run()
        assert run.read_at[fact(SlowFact, path="/remote")] == 0 and run.read_at[fact(FileState, path="/b")] == 1
        assert snapshot.snapshot_fact(SlowFact, path="/remote") == {"sha256": "remote"}
    assert host.asked == ["Facts", "Facts", "Facts"]


def test_after_rereads_run_out_each_fact_is_read_on_its_own():
    """A run that changes much (a first deploy) reads facts as host.get_fact does, once its rereads are spent."""
    with on_stub(FILES) as host:
        snapshot.plan(FileState, path="/a")
        for i in range(snapshot.REREADS):
            host.ops[f"op{i}"] = Meta(changed=True)
            snapshot.snapshot_fact(FileState, path="/a")
        assert host.asked == ["Facts"] * snapshot.REREADS
        host.ops["last"] = Meta(changed=True)
        assert snapshot.snapshot_fact(FileState, path="/b") == {"sha256": "/b"}
    assert host.asked == ["Facts"] * snapshot.REREADS + ["FileState"]


def test_an_unplanned_fact_is_read_with_the_planned_ones_not_yet_read():
    with on_stub(FILES) as host:
        snapshot.plan(FileState, path="/a")
        assert snapshot.snapshot_fact(FileState, path="/z") == {"sha256": "/z"}
        assert snapshot.snapshot_fact(FileState, path="/a") == {"sha256": "/a"}
    assert host.asked == ["Facts"]


def test_planned_decorator_plans_before_the_operation_is_called():
    seen = []

    def op(dest, content):
        seen.append(list(snapshot._run().planned))
        return "meta"

    op._inner = op
    wrapped = snapshot.planned(lambda dest, **_: [(FileState, {"path": dest})])(op)
    with on_stub():
        assert wrapped(dest="/etc/x", content="y") == "meta"
    assert seen == [[(FileState, (("path", "/etc/x"),))]]
    assert wrapped._inner is op


# ------------------------------------------------------- AptUpgradable's cache


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """apt-get in PATH that logs each call and prints one Inst line; inputs and cache in tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    apt = bin_dir / "apt-get"
    apt.write_text(
        f"#!/bin/sh\necho call >> {log}\n[ -e {tmp_path}/fail ] && exit 100\necho 'Inst libc6 [1] (2 x [amd64])'\necho 'Conf libc6'\n"
    )
    apt.chmod(0o755)
    status = tmp_path / "status"
    status.write_text("Package: libc6\n")
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.setattr(facts_mod, "APT_UPGRADABLE_CACHE", str(tmp_path / "cache" / "apt-upgradable"))
    monkeypatch.setattr(facts_mod, "APT_INPUTS", (str(status), str(lists)))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}

    def read():
        out = bash(AptUpgradable().command(full=True), tmp_path, env)
        assert out.returncode == 0, out.stderr
        return AptUpgradable().process(out.stdout.splitlines())

    def calls():
        return len(log.read_text().splitlines()) if log.exists() else 0

    return SimpleNamespace(read=read, calls=calls, status=status, lists=lists, tmp=tmp_path)


def test_apt_upgradable_simulates_once_and_answers_from_its_cache_while_apt_state_is_unchanged(fake_apt):
    assert fake_apt.read() == ["libc6"]
    assert fake_apt.read() == ["libc6"]
    assert fake_apt.calls() == 1


def test_apt_upgradable_simulates_again_after_dpkg_or_the_lists_change(fake_apt):
    fake_apt.read()
    fake_apt.status.write_text("Package: libc6\nStatus: install ok installed\n")
    fake_apt.read()
    (fake_apt.lists / "new_Packages").write_text("x")
    fake_apt.read()
    assert fake_apt.calls() == 3


def test_apt_upgradable_never_keeps_a_failed_simulation(fake_apt):
    (fake_apt.tmp / "fail").write_text("")
    assert fake_apt.read() == []
    (fake_apt.tmp / "fail").unlink()
    assert fake_apt.read() == ["libc6"]
    assert fake_apt.calls() == 2


APT = 'DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confold"'
DIST_UPGRADE = f"{APT} dist-upgrade"


@pytest.mark.parametrize("pending, commands", [([], []), (["libc6"], [DIST_UPGRADE])], ids=["nothing pending: no-op", "pending: upgrades"])
def test_apt_upgraded_upgrades_only_what_the_simulation_lists(pending, commands):
    done = check_spec(apt_upgraded, {AptUpgradable: pending}, {"full": True, "lists_refreshed": False}, commands)
    assert done.asked == ["Facts"]  # through the snapshot


def test_apt_upgraded_after_new_lists_upgrades_without_simulating_first():
    """The run that refreshed the lists skips the seconds-long simulation: its answer would only lead to the same command."""
    done = check_spec(apt_upgraded, {}, {"full": True, "lists_refreshed": True}, [DIST_UPGRADE])
    assert done.asked == []
    assert _upgrade_facts(full=True, lists_refreshed=True) == []
    assert _upgrade_facts(full=False) == [(AptUpgradable, {"full": False})]


def test_on_a_host_with_nothing_on_it_yet_dpkg_skips_its_fsyncs_and_one_sync_follows():
    """unsafe_io: the upgrade and the installs run dpkg with --force-unsafe-io, then sync; nothing to do stays a no-op."""
    unsafe = f"{APT} -o Dpkg::Options::=--force-unsafe-io"
    check_spec(apt_upgraded, {}, {"lists_refreshed": True, "unsafe_io": True}, [f"{unsafe} dist-upgrade", "sync"])
    check_spec(packages_installed, {DebPackages: {}}, {"packages": ["ufw"], "unsafe_io": True}, [f"{unsafe} install ufw", "sync"])
    check_spec(packages_installed, {DebPackages: {"ufw": {"0.36"}}}, {"packages": ["ufw"], "unsafe_io": True}, [])
    check_spec(packages_installed, {DebPackages: {}}, {"packages": ["ufw"]}, [f"{APT} install ufw"])


# ------------------------------------------------------------ batched operations


def test_directory_present_creates_fixes_or_leaves_alone_as_files_directory_does():
    want = dict(path="/srv/a", user="app", group="www-data", mode="750")
    made = run_op(directory_present, {fact(Directory, path="/srv/a"): None}, **want)
    assert made.commands == ["mkdir -p /srv/a", "chmod 750 /srv/a", "chown app:www-data /srv/a"]
    same = run_op(directory_present, {Directory: {"mode": 750, "user": "app", "group": "www-data"}}, **want)
    assert same.is_noop and same.noops == ["directory /srv/a already exists"]
    fixed = run_op(directory_present, {Directory: {"mode": 755, "user": "app", "group": "app"}}, **want)
    assert fixed.commands == ["chmod 750 /srv/a", "chown app:www-data /srv/a"]
    with pytest.raises(OperationError):
        run_op(directory_present, {Directory: False}, **want)


def test_unit_running_reloads_systemd_before_restarting_a_changed_unit():
    facts = {SystemdStatus: {"app-shop.service": True}, SystemdEnabled: {"app-shop.service": True}}
    done = run_op(unit_running, facts, unit="app-shop.service", daemon_reload=True, restarted=True)
    assert done.commands == ["systemctl daemon-reload", "systemctl restart app-shop.service"]
    assert run_op(unit_running, facts, unit="app-shop.service").commands == []


NOW = datetime(2026, 11, 30, 4, 0)
INSTALL = 'DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confold" install'


@pytest.mark.parametrize("op, facts, arguments, commands", [
    pytest.param(packages_installed, {DebPackages: {"ufw": ["0.36"]}}, {"packages": ["ufw"]}, [], id="installed: nothing to do"),
    pytest.param(packages_installed, {DebPackages: {"ufw": ["0.36"]}}, {"packages": ["ufw", "fail2ban"]}, [f"{INSTALL} fail2ban"],
                 id="only the missing package is installed"),
    pytest.param(apt_updated, {File: {"mtime": NOW - timedelta(hours=1)}, Date: NOW}, {"cache_time": 86400}, [],
                 id="lists updated within cache_time: nothing to do"),
    pytest.param(apt_updated, {File: {"mtime": NOW - timedelta(days=2)}, Date: NOW}, {"cache_time": 86400},
                 ["apt-get update", f"touch {APT_UPDATE_FILENAME}"], id="stale lists are updated"),
    pytest.param(apt_updated, {File: None, Date: NOW}, {"cache_time": 86400}, ["apt-get update", f"touch {APT_UPDATE_FILENAME}"],
                 id="never updated"),
    pytest.param(directory_present, {fact(Directory, path="/srv/my apps"): None}, {"path": "/srv/my apps", "user": "a", "group": "b", "mode": "750"},
                 ["mkdir -p '/srv/my apps'", "chmod 750 '/srv/my apps'", "chown a:b '/srv/my apps'"], id="a path with a space is quoted"),
])  # fmt: skip
def test_batched_operations(op, facts, arguments, commands):
    check_spec(op, facts, arguments, commands)


# ------------------------------------------------- remembered from the last run


def test_a_fact_key_survives_the_file_it_is_remembered_in(tmp_path):
    keys = [
        fact(FileState, path="/etc/a b"),
        fact(SystemdStatus, services=("nginx.service",)),
        fact(AptUpgradable, full=True),
        fact(Date),
    ]
    path = tmp_path / snapshot.PLAN_FILE
    snapshot.remember_keys(path, "web1", keys)
    snapshot.remember_keys(path, "web2", keys[:1])
    assert snapshot.remembered_keys(path, "web1") == keys
    assert snapshot.remembered_keys(path, "web2") == keys[:1]
    assert snapshot.remembered_keys(path, "web3") == []


def test_a_remembered_key_that_no_longer_makes_sense_is_dropped(tmp_path):
    path = tmp_path / snapshot.PLAN_FILE
    path.write_text(
        '{"web1": [["operations.facts:FileState", "((\'path\', \'/x\'),)"], ["operations.facts:Gone", "()"],'
        ' ["os:getcwd", "()"], ["operations.facts:FileState", "not python"], "junk"]}'
    )
    assert snapshot.remembered_keys(path, "web1") == [fact(FileState, path="/x")]
    path.write_text("not json")
    assert snapshot.remembered_keys(path, "web1") == []
    # Arguments that are no literals are not remembered (and the rest still are).
    snapshot.remember_keys(path, "web1", [(FileState, (("path", object()),)), fact(FileState, path="/y")])
    assert snapshot.remembered_keys(path, "web1") == [fact(FileState, path="/y")]


def test_the_first_read_of_a_run_reads_what_the_last_run_asked_for_too(tmp_path):
    path = tmp_path / snapshot.PLAN_FILE
    snapshot.remember_keys(path, "stub", [fact(FileState, path="/c"), fact(FileState, path="/z")])
    with on_stub(FILES) as host:
        run = snapshot._run()
        run.remembered = snapshot.remembered_keys(path, "stub")
        snapshot.plan(FileState, path="/a")
        assert snapshot.snapshot_fact(FileState, path="/a") == {"sha256": "/a"}
        # Asked for while the deploy is built, after the first read: already read with it.
        assert snapshot.snapshot_fact(FileState, path="/z") == {"sha256": "/z"}
        snapshot.plan(FileState, path="/b")
        assert snapshot.snapshot_fact(FileState, path="/b") == {"sha256": "/b"}
        assert host.asked == ["Facts", "Facts"]  # /b was new: one more round trip
        run.remembered_in = path
        run.save("stub")
    # What this run planned and asked for, in order: the next run reads /a, /z and /b at once (/c is no longer needed).
    assert snapshot.remembered_keys(path, "stub") == [fact(FileState, path=p) for p in ("/a", "/b", "/z")]


def test_a_pyinfra_operation_reads_its_facts_from_the_snapshot_until_its_first_command():
    from pyinfra.api import operation

    @operation()
    def two_steps(path: str):
        if host_fact(FileState, path=path) is None:
            yield f"touch {path}"
            # After its own command the operation must see the host as it is now.
            assert host_fact(FileState, path=path) == {"sha256": "/a"}

    from pyinfra import host as pyinfra_host

    def host_fact(cls, **kwargs):
        return pyinfra_host.get_fact(cls, **kwargs)

    wrapped = snapshot.facts_through_snapshot(two_steps)
    with on_stub({fact(FileState, path="/a"): None}) as stub:
        gen = wrapped._inner(path="/a")
        assert next(gen) == "touch /a"
        assert stub.asked == ["Facts"]
        stub.facts[fact(FileState, path="/a")] = {"sha256": "/a"}
        assert list(gen) == []
        assert stub.asked == ["Facts", "FileState"]
        assert stub.get_fact.__func__ is type(stub).get_fact  # nothing left shadowing the host's own reads


def test_a_fact_that_keeps_state_from_its_command_reads_right_in_a_batch(tmp_path):
    """pyinfra's FindInFile notes in command() what its process() looks for."""
    from pyinfra.facts.files import FindInFile

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1 web1\n")
    wanted = ((FindInFile, (("path", str(hosts)), ("pattern", r"^127\.0\.1\.1\s.*$"))),)
    batch = Facts()
    out = bash(batch.command(facts=wanted), tmp_path)
    assert batch.process(out.stdout.splitlines()) == {0: ["127.0.1.1 web1"]}


def test_a_batch_stays_under_what_one_shell_argument_may_hold_after_quoting():
    """Found on the docker connector: 40,000 characters with 2,000 single quotes are 'Argument list too long'."""
    keys = [fact(FileState, path=f"/srv/apps/app{i}/it's here/" + "x" * 300) for i in range(400)]
    groups = snapshot.batches(keys)
    assert [k for g in groups for k in g] == keys and len(groups) > 1
    for group in groups:
        text = Facts().command(facts=group)
        assert len(text) + 53 * text.count("'") < 128 * 1024
    assert snapshot.batches(keys[:1], limit=10) == [keys[:1]]  # a fact larger than the limit still gets read


# ------------------------------------------------------ facts read as a group


def test_file_states_read_as_a_group_equal_each_read_alone(tmp_path):
    """Regular files (odd names too), a missing path, a directory and a symlink: one sha256sum and one stat, same values."""
    names = ["plain", "with space", "a:colon", "back\\slash", "it's"]
    for n in names:
        (tmp_path / n).write_text(f"{n}\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    (tmp_path / "plain").chmod(0o640)
    paths = [str(tmp_path / n) for n in [*names, "missing", "dir", "link"]]
    wanted = tuple((FileState, (("path", p),)) for p in paths)
    batch = Facts()
    command = batch.command(facts=wanted)
    assert command.count("sha256sum") == 1  # the group, not a command per file
    out = bash(command, tmp_path)
    values = batch.process(out.stdout.splitlines())
    for i, p in enumerate(paths):
        alone = FileState().process(bash(FileState().command(p), tmp_path).stdout.splitlines())
        assert values[i] == alone, p
    assert values[0]["mode"] == "640" and values[5] is None and values[6] is None


def test_a_group_whose_output_does_not_line_up_leaves_its_members_out(tmp_path):
    """An unreadable file (fewer hashes than files): no member gets a value, so each is read again on its own."""
    ok = tmp_path / "ok"
    ok.write_text("x\n")
    wanted = ((FileState, (("path", str(ok)),)), (FileState, (("path", str(tmp_path / "b")),)))
    batch = Facts()
    batch.command(facts=wanted)
    lines = ["##vpskit-group 0", "present 0 1", "0" * 64, "644 root root", "644 root root", "##vpskit-fact status 0"]
    assert batch.process(lines) == {}
    lines = ["##vpskit-group 0", "present 0", "0" * 64, "644 root root", "##vpskit-fact status 1"]
    assert batch.process(lines) == {}  # the group's command failed


def test_unit_states_read_as_a_group(tmp_path):
    """SystemdStatus and SystemdEnabled of several units: one systemctl show, each fact its own unit's answer."""
    fake = tmp_path / "bin"
    fake.mkdir()
    shown = {"nginx.service": ("running", "enabled"), "caddy.service": ("dead", "disabled"), "x.timer": ("waiting", "enabled")}
    blocks = "\n\n".join(f"Id={u}\nSubState={s}\nUnitFileState={e}" for u, (s, e) in shown.items())
    script = fake / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat <<'EOF'\n{blocks}\nEOF\n")
    script.chmod(0o755)
    wanted = (
        (SystemdStatus, (("services", ("nginx.service",)),)),
        (SystemdEnabled, (("services", ("nginx.service",)),)),
        (SystemdStatus, (("services", ("caddy.service",)),)),
        (SystemdEnabled, (("services", ("caddy.service", "x.timer")),)),
    )
    batch = Facts()
    out = bash(batch.command(facts=wanted), tmp_path, env={"PATH": f"{fake}:/usr/bin:/bin"})
    values = batch.process(out.stdout.splitlines())
    assert (tmp_path / "args").read_text().split()[-3:] == ["nginx.service", "caddy.service", "x.timer"]
    assert values == {
        0: {"nginx.service": True},
        1: {"nginx.service": True},
        2: {"caddy.service": False},
        3: {"caddy.service": False, "x.timer": True},
    }
    # One block short (a unit systemctl did not answer for): every member is read again on its own.
    assert batch.process(["##vpskit-group 0", "Id=nginx.service", "SubState=running", "##vpskit-fact status 0"]) == {}
    # No systemctl on the host: each fact's default, as when read alone.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "bash").symlink_to(shutil.which("bash"))
    out = bash(batch.command(facts=wanted), tmp_path, env={"PATH": str(bare)})
    assert batch.process(out.stdout.splitlines()) == {0: {}, 1: {}, 2: {}, 3: {}}


def test_a_unit_pattern_is_not_grouped():
    assert group_of(SystemdStatus, {"services": ("nginx.service",)}) is not None
    assert group_of(SystemdStatus, {"services": ("app-*.service",)}) is None
    assert group_of(SystemdStatus, {"services": ("a.service",), "user_mode": True}) is None
    assert group_of(FileState, {"path": "/etc/x"}) is not None


def test_named_users_gives_the_entry_users_gives(tmp_path):
    """One account's line, parsed by pyinfra's own Users: the same entry as reading every account (root exists everywhere)."""
    every = Users().process(bash(Users().command(), tmp_path).stdout.splitlines())
    named = NamedUsers().process(bash(NamedUsers().command(users=("root", "no-such-user-vpskit")), tmp_path).stdout.splitlines())
    assert named == {"root": every["root"]}


def test_two_streams_print_every_part_once_with_or_without_a_temporary_directory(tmp_path):
    parts = [f"echo '{snapshot._MARK} {i}'; ( echo value{i}\n); echo '{snapshot._MARK} status' $?" for i in range(5)]
    command = snapshot.in_two_streams(parts)
    both = bash(command, tmp_path).stdout.splitlines()
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("bash", "cat", "rm"):  # no mktemp: the streams run in turn
        (bare / tool).symlink_to(shutil.which(tool))
    in_turn = bash(command, tmp_path, env={"PATH": str(bare)}).stdout.splitlines()
    facts = tuple((OutputLinesFact, ()) for _ in parts)
    expected = {i: [f"value{i}"] for i in range(5)}
    assert parse_facts(both, facts) == parse_facts(in_turn, facts) == expected
    assert in_turn == [line for i in (0, 2, 4, 1, 3) for line in parts_output(i)]


def parts_output(i: int) -> list[str]:
    return [f"{snapshot._MARK} {i}", f"value{i}", f"{snapshot._MARK} status 0"]


class OutputLinesFact(FactBase):
    def process(self, output):
        return output


@pytest.mark.parametrize("deploys_log, unsafe", [(None, True), ({"size": 120}, False)], ids=["fresh host", "deployed before"])
def test_base_system_skips_dpkg_fsyncs_only_on_a_host_vpskit_never_finished_a_deploy_on(monkeypatch, deploys_log, unsafe):
    """The deploys log appears at the end of vpskit's first complete run: until then the apt runs use unsafe_io."""
    calls: dict[str, dict] = {}

    def recorder(name):
        def record(*_, **kwargs):
            calls[name] = kwargs
            return record if name == "facts_through_snapshot" else SimpleNamespace(will_change=True)

        return record

    for name in (
        "apt_proxy_set",
        "checked_file",
        "apt_unlocked",
        "apt_updated",
        "apt_upgraded",
        "packages_installed",
        "facts_through_snapshot",
    ):
        monkeypatch.setattr(system, name, recorder(name))
    release = {"id": "ubuntu", "version_id": "24.04", "version_codename": "noble"}
    with on_stub({OsRelease: release, fact(File, path=system.DEPLOYS_LOG): deploys_log}):
        system.base_system._inner(system.BaseSettings(hostname=""), packages=["ufw"])
    assert calls["apt_upgraded"]["unsafe_io"] is unsafe and calls["packages_installed"]["unsafe_io"] is unsafe
    assert "ufw" in calls["packages_installed"]["packages"]
