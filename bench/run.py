"""``make bench``: what a deploy costs, on fresh systemd targets, with baselines measured in the same run.

    python -m bench.run [ubuntu2404|debian13|...]      # make bench [DISTRO=...] [BENCH=rerun,scaling]

1. First full deploy of examples/vpskit.toml (over SSH, as a user runs it), against
   a lower bound on another fresh target: ``apt-get update`` + ``apt-get install``
   of the package set the deploy left installed, plus ``pip install`` of what the
   deploy put in each app's virtualenv.
2. No-change re-run of the same config (docker connector and SSH): seconds, and
   the commands and facts pyinfra itself reports running on the host (``-vv``).
3. One-app change: the re-run after changing one app's env (or, where apps have
   no env yet, one of its job schedules).
4. Baseline: the same no-change re-run by an equivalent Ansible playbook
   (bench/ansible/), over SSH to the same target as the deploy user.
5. Served throughput: wrk inside the target against each app through nginx +
   TLS (when the config deploys apps behind nginx).
6. The cost curve: for 1, 5, 10 and 20 copies of the example's first app, a first
   deploy on a fresh target (timed, over SSH) and its no-change re-runs.

Each figure is the median of several runs, with min and max, and the 1-minute load
average of the machine when each run started (the machine may be shared: wall-clock
figures move with its load, command counts do not). The table goes to stdout, the
figures to bench/results.json (bench/results-DISTRO.json for a distro other than
Ubuntu 24.04), merged into what the file already holds, so the phases can be run one
at a time. Environment: BENCH_RERUNS (default 3), BENCH_FIRST_RUNS (default 2),
BENCH_APPS (default "1,5,10,20"), BENCH_WRK_SECONDS (default 10), BENCH_PHASES (default
all: first,rerun,change,baseline,served,release,scaling; without "first" the example is deployed
once, untimed, for the phases that need it).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pyinfra

from operations.config import App, load_config
from tests.harness import (
    CACHE,
    LABEL,
    RECIPES,
    ROOT,
    Run,
    Target,
    build_image,
    docker_client,
    dump_toml,
    prepare_web_target,
    resolve_locally,
    run_pyinfra,
    ssh_keypair,
    start_target,
    target_config,
    venv_apps,
)

from . import baseline
from .measure import Figure, count_commands, count_facts, parse_wrk, ratio, slope

HERE = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "vpskit.toml"
SSH_PORT = 2222
PUBLISH = (22, SSH_PORT)
RERUNS = int(os.environ.get("BENCH_RERUNS", "3"))
FIRST_RUNS = int(os.environ.get("BENCH_FIRST_RUNS", "2"))
APP_COUNTS = tuple(int(n) for n in os.environ.get("BENCH_APPS", "1,5,10,20").split(","))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
WRK_CONNECTIONS = 32
PHASES = ("first", "rerun", "change", "baseline", "served", "release", "scaling")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def results_file(distro: str) -> Path:
    """Where ``distro``'s figures are kept: results.json for the default target, results-DISTRO.json otherwise."""
    return HERE / ("results.json" if distro == "ubuntu2404" else f"results-{distro}.json")


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


def conditions() -> dict:
    """What else ran on the machine: load average and other containers, now."""
    client = docker_client()
    others = [c.name for c in client.containers.list() if c.labels.get(LABEL) != str(os.getpid())]
    return {"load_avg_1m": load_1m(), "other_containers": len(others), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Bench:
    def __init__(self, distro: str, workdir: Path):
        self.distro = distro
        self.workdir = workdir
        self.client = docker_client()
        self.image = build_image(self.client, distro)
        keydir = CACHE / "bench"
        keydir.mkdir(parents=True, exist_ok=True)
        root, root_pub = ssh_keypair(keydir, "id_root")
        deploy, deploy_pub = ssh_keypair(keydir, "id_deploy")
        self.keys = {"dir": workdir, "root": root, "root_pub": root_pub, "deploy": deploy, "deploy_pub": deploy_pub}
        self.example = tomllib.loads(EXAMPLE.read_text())
        # The venv stack of the example: its compose app needs a nested engine and a
        # pre-loaded image, which a fresh VPS would pull from a registry instead.
        # The Ansible baseline installs requirements files only: the apps it can deploy too.
        self.example["apps"] = [
            a
            for a in venv_apps(self.example)
            if baseline.requirements_app(a["name"], a.get("install", "auto"), a.get("requirements", "requirements.txt"))
        ]
        self.example.pop("docker", None)
        self.targets: list[Target] = []
        self.results: dict = {"conditions": {"start": conditions()}}
        self.notes: list[str] = []

    # ------------------------------------------------------------ plumbing

    def fresh_target(self) -> Target:
        """A new systemd target like a fresh VPS (root's key on port 22), with what the web stack needs."""
        target = start_target(self.client, self.image, self.distro, publish=PUBLISH)
        self.targets.append(target)
        target.put_file("/root/.ssh/authorized_keys", self.keys["root_pub"].read_text(), mode=0o600)
        return target

    def prepared(self, target: Target, raw: dict) -> dict:
        """``raw`` with the app repos, domains and ACME server the target now has (web stack only)."""
        if not raw.get("apps") or "repo" not in raw["apps"][0]:
            return raw
        return prepare_web_target(target, raw)

    def drop(self, target: Target) -> None:
        target.remove()
        self.targets.remove(target)

    def config(self, raw: dict, target: Target, name: str, connector: str) -> Path:
        # One folder per target: vpskit remembers working SSH ports per address beside the
        # config, and every target is 127.0.0.1 here.
        folder = self.workdir / target.id[:12]
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}-{connector}.toml"
        path.write_text(dump_toml(target_config(raw, target, self.keys, connector=connector)))
        return path

    def timed(self, config: Path, check: bool = True) -> tuple[float, Run]:
        self.load = load_1m()
        start = time.perf_counter()
        run = run_pyinfra(config, "-vv", check=check)
        return time.perf_counter() - start, run

    def reruns(self, config: Path, label: str) -> tuple[Figure, Figure, Figure]:
        """RERUNS no-change runs: seconds, commands and facts, each as a Figure."""
        seconds, commands, facts = Figure(), Figure(), Figure()
        for i in range(RERUNS):
            secs, run = self.timed(config)
            if (run.changed, run.errors) != (0, 0):
                self.notes.append(f"{label}: run {i + 1} was not a no-change run: {run.changed_ops}")
            seconds.add(secs, self.load)
            commands.add(count_commands(run.output))
            facts.add(count_facts(run.output))
            log(f"  {label} {i + 1}/{RERUNS}: {secs:.1f}s, {commands.runs[-1]} commands, {facts.runs[-1]} facts, load {self.load}")
        return seconds, commands, facts

    # --------------------------------------------------------------- phases

    def first_deploys(self) -> Target:
        """First deploys and lower bounds, interleaved so background load hits both alike; keeps the last deploy."""
        first, lower, upgrade = Figure(), Figure(), Figure()
        first_commands = Figure()
        deployed = None
        for i in range(FIRST_RUNS):
            target = self.fresh_target()
            raw = self.prepared(target, self.example)
            ssh_config = self.config(raw, target, "example", "ssh")
            log(f"first deploy {i + 1}/{FIRST_RUNS} ({self.distro}, over SSH as root) ...")
            secs, run = self.timed(ssh_config)
            if not run.changed:
                raise RuntimeError(f"first deploy {i + 1} changed nothing: it did not reach the fresh target")
            first.add(secs, self.load)
            first_commands.add(count_commands(run.output))
            log(f"  {secs:.1f}s, {run.changed} operations changed, {first_commands.runs[-1]} commands")
            if deployed is not None:
                self.drop(deployed.target)
            deployed = Deployed(target, raw, ssh_config, self.config(raw, target, "example", "docker"))
            if i == 0:
                self.packages, self.venvs = deployed_software(target)
            log(
                f"lower bound {i + 1}/{FIRST_RUNS}: apt-get install of {len(self.packages)} packages, pip install into {len(self.venvs)} venvs ..."
            )
            bound, upgrade_secs = self.lower_bound()
            lower.add(bound)
            upgrade.add(upgrade_secs)
            log(f"  {bound:.1f}s (+{upgrade_secs:.1f}s for the dist-upgrade a fresh image also needs)")
        self.deployed = deployed
        with_upgrade = Figure([a + b for a, b in zip(lower.runs, upgrade.runs, strict=True)])
        self.results.update(
            first_deploy=first.as_dict(),
            first_deploy_commands=first_commands.as_dict(),
            lower_bound=lower.as_dict() | {"packages": self.packages, "pip": {k: len(v) for k, v in self.venvs.items()}},
            lower_bound_with_upgrade=with_upgrade.as_dict(),
            first_deploy_s=round(first.median, 2),
            lower_bound_s=round(lower.median, 2),
            first_deploy_ratio=ratio(first.median, lower.median),
            first_deploy_ratio_with_upgrade=ratio(first.median, with_upgrade.median),
        )
        return deployed.target

    def deploy_once(self) -> None:
        """The deployed example the later phases use, without timing it."""
        target = self.fresh_target()
        raw = self.prepared(target, self.example)
        ssh_config = self.config(raw, target, "example", "ssh")
        log("deploying the example (not timed) ...")
        run_pyinfra(ssh_config)
        self.deployed = Deployed(target, raw, ssh_config, self.config(raw, target, "example", "docker"))
        self.packages, self.venvs = deployed_software(target)

    def lower_bound(self) -> tuple[float, float]:
        """Seconds for the bare installs on a fresh target, and for the dist-upgrade after them."""
        target = self.fresh_target()
        try:
            self.prepared(target, self.example)
            pkgs = " ".join(shlex.quote(p) for p in self.packages)
            steps = [
                "export DEBIAN_FRONTEND=noninteractive",
                "apt-get update -qq",
                f"apt-get install -y -qq {pkgs} >/dev/null",
            ]
            for n, (python, reqs) in enumerate(self.venvs.items()):
                venv = f"/tmp/lower-bound-venv-{n}"
                steps.append(f"{python} -m venv {venv} && {venv}/bin/pip install -q {' '.join(map(shlex.quote, reqs))}")
            start = time.perf_counter()
            target.exec(" && ".join(steps))
            bound = time.perf_counter() - start
            start = time.perf_counter()
            target.exec("DEBIAN_FRONTEND=noninteractive apt-get -y -qq dist-upgrade >/dev/null")
            return bound, time.perf_counter() - start
        finally:
            self.drop(target)

    def rerun_phase(self) -> None:
        d = self.deployed
        log(f"no-change re-runs of the example config, docker connector ({RERUNS} runs) ...")
        secs, commands, facts = self.reruns(d.docker_config, "re-run (docker)")
        log(f"no-change re-runs of the example config, SSH as the deploy user ({RERUNS} runs) ...")
        ssh_secs, ssh_commands, _ = self.reruns(d.ssh_config, "re-run (ssh)")
        self.results.update(
            rerun=secs.as_dict(),
            rerun_ssh=ssh_secs.as_dict(),
            rerun_s=round(secs.median, 2),
            rerun_ssh_s=round(ssh_secs.median, 2),
            rerun_commands=int(commands.median),
            rerun_facts=int(facts.median),
            rerun_ssh_commands=int(ssh_commands.median),
        )

    def one_app_change(self) -> None:
        d = self.deployed
        what, change = one_app_change(d.raw)
        log(f"one-app change ({what}), {RERUNS} runs ...")
        seconds, changed = Figure(), Figure()
        for i in range(RERUNS):
            config = self.config(change(d.raw, i + 1), d.target, "changed", "docker")
            secs, run = self.timed(config)
            seconds.add(secs, self.load)
            changed.add(run.changed)
            log(f"  change {i + 1}: {secs:.1f}s, {run.changed} operations changed: {', '.join(run.changed_ops)}")
        run_pyinfra(d.docker_config)  # back to the example config
        self.results.update(
            one_app_change=seconds.as_dict() | {"change": what, "changed_ops": changed.runs}, one_app_change_s=round(seconds.median, 2)
        )

    def baseline_phase(self) -> None:
        d = self.deployed
        if not Path(baseline.ANSIBLE_PLAYBOOK).exists():
            self.notes.append("baseline not measured: ansible-playbook is not installed (make bench installs bench/requirements.txt)")
            return
        workdir = self.workdir / "ansible"
        workdir.mkdir(exist_ok=True)
        config = load_config(d.ssh_config)
        variables = baseline.playbook_vars(config, d.target, self.packages, workdir)
        port = d.target.ports[SSH_PORT]
        log(f"baseline: {baseline.ansible_version()}, {RERUNS} runs over SSH as {config.deploy_user.name} ...")
        seconds = Figure()
        converged = False
        while len(seconds.runs) < RERUNS:
            secs, recap, output = baseline.run_playbook(config, port, variables, workdir)
            log(f"  baseline run: {secs:.1f}s, {recap}")
            if recap["changed"] or recap["failed"]:
                # Not a no-change run: the playbook still had work to do on vpskit's state.
                if converged:
                    raise RuntimeError(f"the Ansible baseline changes the host on every run:\n{output[-4000:]}")
                self.notes.append(f"baseline: the first run changed {recap['changed']} tasks on vpskit's state (not counted)")
                converged = True
                continue
            converged = True
            seconds.add(secs, self.load)
        self.results.update(
            baseline_rerun=seconds.as_dict() | {"tasks_ok": recap["ok"], "ansible": baseline.ansible_version()},
            baseline_rerun_s=round(seconds.median, 2),
            rerun_ratio=ratio(self.results.get("rerun_ssh_s"), seconds.median),
            rerun_ratio_docker=ratio(self.results.get("rerun_s"), seconds.median),
        )

    def served_phase(self) -> None:
        d = self.deployed
        sites = [a for a in d.raw.get("apps", []) if a.get("domains") and a.get("repo")]
        if not sites or d.target.exec("command -v nginx", check=False).returncode != 0:
            self.notes.append("throughput not measured: this deploy serves no app through nginx")
            self.results.update(served=None, rps=None, p50_ms=None, p99_ms=None, errors=None)
            return
        d.target.exec("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null")
        served = {}

        def wrk(url: str) -> dict:
            log(f"wrk {WRK_SECONDS}s, {WRK_CONNECTIONS} connections, against {url} inside the target ...")
            out = d.target.exec(
                f"timeout {WRK_SECONDS + 30} wrk -t2 -c{WRK_CONNECTIONS} -d{WRK_SECONDS}s --timeout 5s --latency {url}"
            ).stdout
            result = parse_wrk(out)
            log(f"  {result}")
            return result

        for app in sites:
            served[app["name"]] = wrk(f"https://{app['domains'][0]}/") | {
                "kind": app.get("kind", "flask"),
                "workers": workers(d.target, app["name"]),
                # The same requests straight to gunicorn (no nginx, no TLS): what the app alone does.
                "direct": wrk(f"http://127.0.0.1:{app['port']}/"),
            }
        main = next((s for s in served.values() if s["kind"] == "flask"), next(iter(served.values())))
        self.results.update(served=served, rps=main["rps"], p50_ms=main["p50_ms"], p99_ms=main["p99_ms"], errors=main["errors"])

    def release_phase(self) -> None:
        """A new commit of one app deployed while wrk loads it through nginx and TLS (errors lost), then rolled back and forth."""
        d = self.deployed
        app = next((a for a in d.raw.get("apps", []) if a.get("domains") and a.get("repo")), None)
        if app is None:
            self.notes.append("release not measured: this deploy serves no venv app through nginx")
            return
        t, name = d.target, app["name"]
        t.exec("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null")
        work = f"/tmp/bench-release-{name}"
        # An empty commit: a new release with the same install files, so the switch is gunicorn's graceful reload.
        t.exec(
            f"rm -rf {work} && git clone -q {shlex.quote(app['repo'])} {work} && cd {work} && "
            "git -c user.name=bench -c user.email=bench@example.test commit -q --allow-empty -m 'bench release' && git push -q origin HEAD"
        )
        url = f"https://{app['domains'][0]}/"
        log(f"release: {name} deploys a new commit while wrk ({WRK_CONNECTIONS} connections) loads {url} ...")
        t.exec(
            f"setsid nohup timeout -s INT 900 wrk -t2 -c{WRK_CONNECTIONS} -d900s --timeout 5s --latency {url} "
            "> /tmp/bench-wrk.out 2>&1 < /dev/null &"
        )
        time.sleep(2)
        secs, run = self.timed(d.docker_config)
        time.sleep(2)
        t.exec("pkill -INT -x wrk; for i in $(seq 30); do pgrep -x wrk >/dev/null || break; sleep 1; done")
        load = parse_wrk(t.out("cat /tmp/bench-wrk.out"))
        log(f"  deploy {secs:.1f}s ({run.changed} operations changed), under load: {load}")
        live = t.out(f"readlink /srv/apps/{name}/current").rsplit("/", 1)[-1]
        start = time.perf_counter()
        t.exec(f"vpskit-app rollback {name}")
        rollback = time.perf_counter() - start
        t.exec(f"vpskit-app rollback {name} {live}")  # forward again: the host matches its config for later phases
        log(f"  vpskit-app rollback {name}: {rollback:.1f}s")
        self.results.update(
            release={"app": name, "deploy_s": round(secs, 2), "load_1m": self.load, "changed_ops": run.changed_ops, "wrk": load},
            deploy_changed_commit_s=round(secs, 2),
            errors_during_deploy=load["errors"],
            rollback_s=round(rollback, 2),
        )

    def scaling_phase(self) -> None:
        """The cost curve: for each number of generated apps, a timed first deploy on a fresh target, then its no-change re-runs."""
        first, by_apps, commands, first_commands = {}, {}, {}, {}
        for n in APP_COUNTS:
            target = self.fresh_target()
            raw = generated_apps(self.prepared(target, self.example), n)
            if any(a.get("domains") for a in raw["apps"]):
                resolve_locally(target, [d for a in raw["apps"] for d in a.get("domains", [])])
            log(f"{n} apps: first deploy (over SSH as root) ...")
            secs, run = self.timed(self.config(raw, target, f"apps{n}", "ssh"))
            first[n] = Figure([secs], loads=[self.load])
            first_commands[n] = count_commands(run.output)
            log(f"  {secs:.1f}s, {first_commands[n]} commands, load {self.load}")
            secs, cmds, _ = self.reruns(self.config(raw, target, f"apps{n}", "docker"), f"re-run with {n} apps")
            by_apps[n], commands[n] = secs, cmds
            self.drop(target)
        medians = {n: f.median for n, f in by_apps.items()}
        self.results.update(
            rerun_by_apps={str(n): round(s, 2) for n, s in medians.items()},
            rerun_by_apps_detail={str(n): f.as_dict() | {"commands": int(commands[n].median)} for n, f in by_apps.items()},
            rerun_commands_by_apps={str(n): int(c.median) for n, c in commands.items()},
            seconds_per_extra_app=slope(medians),
            commands_per_extra_app=slope({n: c.median for n, c in commands.items()}),
            first_deploy_by_apps={str(n): round(f.median, 2) for n, f in first.items()},
            first_deploy_by_apps_detail={str(n): f.as_dict() | {"commands": first_commands[n]} for n, f in first.items()},
            first_deploy_seconds_per_extra_app=slope({n: f.median for n, f in first.items()}),
        )

    def cleanup(self) -> None:
        for target in list(self.targets):
            self.drop(target)


@dataclasses.dataclass
class Deployed:
    target: Target
    raw: dict
    ssh_config: Path
    docker_config: Path


def deployed_software(target: Target) -> tuple[list[str], dict[str, list[str]]]:
    """What the deploy installed: packages marked manual beyond the fresh image's, and each venv's pip freeze by interpreter."""
    manual = set(target.out("apt-mark showmanual").split())
    fresh = docker_client().containers.run(target.container.image.id, ["apt-mark", "showmanual"], remove=True)
    packages = sorted(manual - set(fresh.decode().split()))
    venvs: dict[str, list[str]] = {}
    for cfg in target.out("find /home /srv /opt -maxdepth 6 -name pyvenv.cfg 2>/dev/null || true").split():
        venv = cfg.rsplit("/", 1)[0]
        home = target.out(f"sed -n 's/^home *= *//p' {cfg}")
        version = target.out(f"{venv}/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
        frozen = target.out(f"{venv}/bin/pip freeze --exclude-editable 2>/dev/null || true").split()
        reqs = [r for r in frozen if " @ " not in r and not r.startswith("-")]
        have = venvs.setdefault(f"{home}/python{version}", [])
        have.extend(r for r in reqs if r not in have)
    return packages, venvs


def workers(target: Target, app: str) -> int | None:
    """gunicorn workers serving ``app``: the children of its unit's main process."""
    for unit in (f"app-{app}.service", f"{app}.service"):
        pid = target.exec(f"systemctl show -p MainPID --value {unit}", check=False).stdout.strip()
        if pid and pid != "0":
            return int(target.out(f"ps --ppid {pid} --no-headers | wc -l"))
    return None


def one_app_change(raw: dict):
    """(what changes, change(raw, n) -> raw with the n-th change to the first app only)."""
    has_env = "env" in {f.name for f in dataclasses.fields(App)}

    def change(raw: dict, n: int) -> dict:
        out = copy.deepcopy(raw)
        app = out["apps"][0]
        if has_env:
            app["env"] = {**app.get("env", {}), "BENCH_CHANGE": str(n)}
        else:
            job = next(j for j in app["jobs"] if j.get("kind", "timer") == "timer")
            job["schedule"] = f"*-*-* 03:{n:02d}:00"
        return out

    what = "env of app " if has_env else "a job schedule of app "
    return what + raw["apps"][0]["name"], change


def generated_apps(raw: dict, n: int) -> dict:
    """``raw`` with ``n`` copies of its first app, each with its own name, port, domains and paths."""
    template = raw["apps"][0]
    name = template["name"]
    out = copy.deepcopy(raw)
    out["apps"] = []
    for i in range(1, n + 1):
        # Its own paths and domains; the same code (repo) as the template.
        app = json.loads(json.dumps(template).replace(f"/{name}/", f"/app{i}/").replace(f"{name}.", f"app{i}."))
        app.update(name=f"app{i}", port=6000 + i)
        if "repo" in template:
            app["repo"] = template["repo"]
        out["apps"].append(app)
    return out


# ------------------------------------------------------------------ report


def table(r: dict) -> str:
    def fig(key: str, unit: str = "s") -> str:
        f = r.get(key)
        if not f or "median" not in f:
            return "not measured"
        return f"{f['median']:.1f}{unit} (min {f['min']:.1f}, max {f['max']:.1f}, {len(f['runs'])} runs)"

    def num(v, fmt="{:.2f}") -> str:
        return "n/a" if v is None else fmt.format(v)

    rows = [
        ("first deploy (SSH)", fig("first_deploy")),
        ("lower bound: apt-get + pip", fig("lower_bound")),
        ("  first deploy / lower bound", num(r.get("first_deploy_ratio"), "{:.2f}x")),
        (
            "  ... lower bound incl. dist-upgrade",
            f"{fig('lower_bound_with_upgrade')} -> {num(r.get('first_deploy_ratio_with_upgrade'), '{:.2f}x')}",
        ),
        ("no-change re-run (docker)", f"{fig('rerun')}, {r.get('rerun_commands')} commands, {r.get('rerun_facts')} facts"),
        ("no-change re-run (SSH)", f"{fig('rerun_ssh')}, {r.get('rerun_ssh_commands')} commands"),
        ("baseline: Ansible re-run (SSH)", fig("baseline_rerun")),
        ("  vpskit / Ansible (both SSH)", num(r.get("rerun_ratio"), "{:.2f}x")),
        ("  vpskit (docker) / Ansible", num(r.get("rerun_ratio_docker"), "{:.2f}x")),
        ("one-app change", f"{fig('one_app_change')} ({(r.get('one_app_change') or {}).get('change', '')})"),
    ]
    for n, f in (r.get("rerun_by_apps_detail") or {}).items():
        rows.append((f"re-run with {n} apps", f"{f['median']:.1f}s (min {f['min']:.1f}, max {f['max']:.1f}), {f['commands']} commands"))
    if r.get("rerun_by_apps_detail"):
        rows.append(
            ("  per extra app", f"{num(r.get('seconds_per_extra_app'))}s, {num(r.get('commands_per_extra_app'), '{:.1f}')} commands")
        )
    for n, f in (r.get("first_deploy_by_apps_detail") or {}).items():
        rows.append((f"first deploy with {n} apps", f"{f['median']:.1f}s, {f['commands']} commands (load {f.get('load_1m', ['?'])[0]})"))
    if r.get("served"):
        for name, s in r["served"].items():
            rows.append(
                (
                    f"served: {name} ({s['kind']}, {s['workers']} workers)",
                    f"{s['rps']:.0f} req/s, p50 {num(s['p50_ms'])} ms, p99 {num(s['p99_ms'])} ms, {s['errors']} errors",
                )
            )
            if s.get("direct"):
                g = s["direct"]
                rows.append(
                    (
                        f"  {name} straight to gunicorn (no nginx/TLS)",
                        f"{g['rps']:.0f} req/s, p99 {num(g['p99_ms'])} ms, {g['errors']} errors",
                    )
                )
    else:
        rows.append(("served throughput", "not measured (no app behind nginx in this deploy)"))
    if r.get("release"):
        w = r["release"]["wrk"]
        rows.append(
            (
                f"new commit under load ({r['release']['app']})",
                f"{num(r.get('deploy_changed_commit_s'))}s, {r.get('errors_during_deploy')} errors in {w.get('requests')} requests",
            )
        )
        rows.append(("  vpskit-app rollback", f"{num(r.get('rollback_s'))}s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str]) -> int:
    distro = argv[0] if argv else os.environ.get("BENCH_DISTRO", "ubuntu2404")
    if distro not in RECIPES:
        print(f"unknown distro {distro!r}: choose one of {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    phases = [p for p in (os.environ.get("BENCH_PHASES") or ",".join(PHASES)).split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        print(f"unknown phase {', '.join(sorted(unknown))}: choose from {','.join(PHASES)}", file=sys.stderr)
        return 2
    results = results_file(distro)
    started = time.perf_counter()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vpskit-bench-") as tmp:
        bench = Bench(distro, Path(tmp))
        start = bench.results["conditions"]["start"]
        run = {
            "distro": distro,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "pyinfra": pyinfra.__version__,
            "python": platform.python_version(),
            "reruns": RERUNS,
            "first_runs": FIRST_RUNS,
            "start": start,
        }
        try:
            if "first" in phases:
                bench.first_deploys()
            elif set(phases) & {"rerun", "change", "baseline", "served", "release"}:
                bench.deploy_once()
            for phase, measure in (
                ("rerun", bench.rerun_phase),
                ("change", bench.one_app_change),
                ("baseline", bench.baseline_phase),
                ("served", bench.served_phase),
                ("release", bench.release_phase),
                ("scaling", bench.scaling_phase),
            ):
                if phase in phases:
                    try:
                        measure()
                    except Exception as e:  # one broken phase keeps the figures the others measured
                        last_line = (str(e).strip().splitlines() or [""])[-1]
                        failed.append(phase)
                        bench.notes.append(f"{phase} failed: {type(e).__name__}: {last_line}")
                        log(f"{phase} failed, going on with the other phases: {bench.notes[-1]}")
        finally:
            bench.cleanup()
        run["end"] = conditions()
        run["bench_seconds"] = round(time.perf_counter() - started)
        run["notes"] = bench.notes
    # Figures of earlier runs (read now: another bench may have written meanwhile) stay unless this run measured them again.
    earlier = json.loads(results.read_text()) if results.exists() else {}
    r = {k: v for k, v in earlier.items() if k not in ("conditions", "notes")} | bench.results
    # Each phase's figures with the conditions of the run that measured them.
    by_phase = {k: v for k, v in earlier.get("conditions", {}).items() if k in PHASES}
    r["conditions"] = {**by_phase, **{phase: run for phase in phases}}
    results.write_text(json.dumps(r, indent=2) + "\n")
    if "scaling" in phases:
        from .curve import curves, draw

        print(f"cost curve drawn: {draw(curves()).relative_to(ROOT)}")
    print()
    print(table(r))
    for note in run["notes"]:
        print(f"note: {note}")
    print(
        f"\n{run['cpus']} CPUs, load {start['load_avg_1m']} -> {run['end']['load_avg_1m']}, "
        f"{start['other_containers']} other containers running; {run['bench_seconds']}s in all; written to {results.relative_to(ROOT)}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
