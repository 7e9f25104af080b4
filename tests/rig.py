"""The end-to-end test rig: systemd containers as VPS stand-ins, and the real pyinfra CLI.

Targets are reached only through ``docker exec`` and ports published on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VPSKIT_TEST_CACHE", Path.home() / ".cache" / "vpskit-test"))
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
LABEL = "vpskit-test"


def docker_client() -> docker.DockerClient:
    client = docker.from_env(timeout=300)
    client.ping()
    return client


@dataclass
class Target:
    """One running systemd container."""

    container: docker.models.containers.Container
    distro: str
    ports: dict[int, int] = field(default_factory=dict)  # container port -> 127.0.0.1 port

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def connector(self) -> str:
        return f"@docker/{self.container.id}"

    def exec(self, cmd: str, check: bool = True, user: str = "root") -> subprocess.CompletedProcess:
        """Run ``cmd`` with bash inside the target; output as text."""
        proc = subprocess.run(
            ["docker", "exec", "-u", user, self.container.id, "bash", "-c", cmd],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"in {self.distro}: `{cmd}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def out(self, cmd: str) -> str:
        return self.exec(cmd).stdout.strip()

    def put_file(self, path: str, content: str, mode: int = 0o644) -> None:
        data = content.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(os.path.basename(path))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        self.exec(f"mkdir -p {os.path.dirname(path)}")
        self.container.put_archive(os.path.dirname(path), buf.getvalue())

    def wait_running(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            state = self.exec("systemctl is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise AssertionError(f"systemd in {self.distro} target did not come up: {state!r}")

    def remove(self) -> None:
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass


def start_target(
    client: docker.DockerClient,
    image: str,
    distro: str,
    publish=(22,),
    name: str | None = None,
    owned: bool = True,
    nested_docker: bool = False,
    network: str | None = None,
) -> Target:
    """Start a systemd container from ``image`` with ``publish`` ports on 127.0.0.1.

    ``owned`` targets belong to this test run and are removed with it. ``nested_docker``
    targets can run a Docker engine of their own (opt-in: SYS_PTRACE for containers that
    run as other users, /proc/sys writable for the engine's sysctls). ``network``: a docker
    network the test created, on which the test's containers reach each other by name.
    """
    container = client.containers.run(
        image,
        detach=True,
        name=name or f"vpskit-test-{distro}-{uuid.uuid4().hex[:8]}",
        hostname=f"vps-{distro}",
        labels={LABEL: str(os.getpid())} if owned else {"vpskit-demo": "1"},
        cap_add=["SYS_ADMIN", "NET_ADMIN", *(["SYS_PTRACE"] if nested_docker else [])],
        cgroupns="host",
        security_opt=["seccomp=unconfined"],
        tmpfs={"/run": "", "/run/lock": ""},
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
        ports={f"{p}/tcp": ("127.0.0.1", None) for p in publish},
        stop_signal="SIGRTMIN+3",
        **({"network": network} if network else {}),
    )
    target = Target(container, distro)
    container.reload()
    for p in publish:
        binding = container.attrs["NetworkSettings"]["Ports"][f"{p}/tcp"][0]
        target.ports[p] = int(binding["HostPort"])
    target.wait_running()
    if nested_docker:
        target.exec("mount -o remount,rw /proc/sys")
    # Downloads through the test machine's package cache when it runs (tests.pkgcache builds on this module).
    from tests.pkgcache import use_cache

    use_cache(target)
    # Docker bind-mounts /etc/hostname and /etc/hosts; a VPS owns them. Keep their
    # content, drop the mounts, so hostnamectl works as on a real host.
    target.exec(
        "for f in /etc/hostname /etc/hosts; do c=$(cat $f); umount $f && printf '%s\\n' \"$c\" > $f; done;"
        " systemctl stop systemd-hostnamed 2>/dev/null || true"
    )
    return target


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def remove_leftover_targets(client: docker.DockerClient, mine: bool = False) -> None:
    """Remove test targets left by runs that died (or, with ``mine``, this run's own).

    Each target is labelled with the PID of the test run that started it, so
    two test runs on one machine never remove each other's targets.
    """
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        owner = c.labels.get(LABEL, "")
        if (mine and owner == str(os.getpid())) or (not mine and not _alive(owner)):
            try:
                c.remove(force=True)
            except docker.errors.APIError:
                pass  # another test worker is removing it already


# ------------------------------------------------------------- running pyinfra


@dataclass
class Run:
    returncode: int
    output: str
    changed: int  # operations that changed something (pyinfra's "Success" column)
    errors: int
    unchanged: int
    changed_ops: list[str]

    def __str__(self) -> str:
        return self.output[-6000:]

    def assert_quiet(self) -> None:
        """The run changed nothing and failed nowhere (a re-run of the same config)."""
        assert (self.changed, self.errors) == (0, 0), f"changed: {self.changed_ops}\n{self}"


_ROW = re.compile(r"^\s*(?P<name>.+?)\s{2,}(?P<hosts>\d+)\s+(?P<success>\d+|-)\s+(?P<error>\d+|-)\s+(?P<nochange>\d+|-)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_results(output: str) -> tuple[int, int, int, list[str]]:
    """pyinfra's own result table: (changed, errors, unchanged, names of changed ops)."""
    text = _ANSI.sub("", output)
    changed_ops: list[str] = []
    totals = None
    in_table = False
    for line in text.splitlines():
        if re.search(r"Operation\s+Hosts\s+Success\s+Error\s+No Change", line):
            in_table = True
            continue
        if not in_table:
            continue
        m = _ROW.match(line)
        if not m:
            continue
        num = lambda v: 0 if v == "-" else int(v)  # noqa: E731
        values = (num(m["success"]), num(m["error"]), num(m["nochange"]))
        if m["name"].strip() == "Grand total":
            totals = values
        elif values[0]:
            changed_ops.append(m["name"].strip())
    if totals is None:
        raise AssertionError(f"no pyinfra result table in output:\n{text[-4000:]}")
    return totals[0], totals[1], totals[2], changed_ops


_DETECTED_ROW = re.compile(r"^\s*(?P<name>.+?)\s{2,}(?P<change>\d+ \(.*?\)|-)\s+(?P<cond>\d+ \(.*?\)|-)\s*$")


def parse_detected(output: str) -> list[str]:
    """The operations a ``--dry`` run says would change (pyinfra's "Detected changes" table)."""
    text = _ANSI.sub("", output)
    if "Detected changes:" not in text:
        raise AssertionError(f"no 'Detected changes' table in output:\n{text[-4000:]}")
    ops = []
    for line in text.split("Detected changes:", 1)[1].splitlines()[2:]:
        m = _DETECTED_ROW.match(line)
        if not m:
            break
        if m["change"] != "-" or m["cond"] != "-":
            ops.append(m["name"].strip())
    return ops


def _execute(cmd: list[str], env: dict, timeout: int, stream: bool) -> tuple[int, str]:
    """Run ``cmd`` in the project root: (exit code, its output); with ``stream`` the output is also shown as it comes."""
    if not stream:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    expired = threading.Event()
    timer = threading.Timer(timeout, lambda: (expired.set(), proc.kill()))
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    finally:
        timer.cancel()
        returncode = proc.wait()
    if expired.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout, output="".join(lines))
    return returncode, "".join(lines)


def run_pyinfra(
    config_path: Path, *extra: str, env: dict | None = None, timeout: int = 1500, check: bool = True, stream: bool = False
) -> Run:
    """Run ``pyinfra -y inventory.py deploy.py`` from the project root with this config.

    With ``--dry`` (no ``-y``: pyinfra then detects changes and stops) the result's
    ``changed_ops`` are the operations pyinfra says would change. With ``stream``
    pyinfra's output is shown as it runs, and still returned whole in the result.
    """
    dry = "--dry" in extra
    cmd = [PYINFRA, *([] if dry else ["-y"]), *extra, "inventory.py", "deploy.py"]
    full_env = {**os.environ, "VPSKIT_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **(env or {})}
    returncode, output = _execute(cmd, full_env, timeout, stream)
    if dry:
        if check and returncode != 0:
            raise AssertionError(f"pyinfra --dry exited {returncode}:\n{output[-6000:]}")
        ops = parse_detected(output) if returncode == 0 else []
        return Run(returncode, output, len(ops), 0, -1, ops)
    if returncode == 0 or "Operation" in output:
        try:
            changed, errors, unchanged, ops = parse_results(output)
        except AssertionError:
            if check:
                raise
            changed = errors = unchanged = -1
            ops = []
    else:
        changed = errors = unchanged = -1
        ops = []
    run = Run(returncode, output, changed, errors, unchanged, ops)
    if check and returncode != 0:
        raise AssertionError(f"pyinfra exited {returncode}:\n{run}")
    return run


def ssh_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    key = directory / name
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, key.with_suffix(".pub")


def ssh(
    port: int, user: str, key: Path, command: str, known_hosts: Path | None = None, timeout: int = 20, options=()
) -> subprocess.CompletedProcess:
    """A fresh OpenSSH login to 127.0.0.1:port (no agent, only ``key``); ``options`` are -o values.

    Host keys are not remembered: test targets come and go on reused ports.
    """
    extra = [arg for opt in options for arg in ("-o", opt)]
    return subprocess.run(
        [
            "ssh", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={timeout}", *extra, f"{user}@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=timeout + 10,
    )  # fmt: skip


def dump_toml(data: dict) -> str:
    """Write vpskit's config shapes (tables, arrays of tables, scalars, lists) as TOML."""

    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    def table(prefix: str, d: dict, header: str) -> list[str]:
        lines = [header] if header else []
        subs = []
        for k, v in d.items():
            if isinstance(v, dict):
                subs.append((k, v))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                subs.append((k, v))
            else:
                lines.append(f"{k} = {scalar(v)}")
        for k, v in subs:
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                lines += [""] + table(f"{name}.", v, f"[{name}]")
            else:
                for item in v:
                    lines += [""] + table(f"{name}.", item, f"[[{name}]]")
        return lines

    return "\n".join(table("", data, "")) + "\n"


def target_config(raw: dict, target: Target, keys: dict, connector: str = "ssh") -> dict:
    """``raw`` config aimed at ``target``: its published ports, the test keys, a private known_hosts."""
    cfg = json.loads(json.dumps(raw))
    server = cfg.setdefault("server", {})
    first = cfg.setdefault("first_login", {})
    user = cfg.setdefault("deploy_user", {})
    server["known_hosts_file"] = str(keys["dir"] / f"known_hosts-{target.id[:12]}")
    if connector == "ssh":
        server["address"] = "127.0.0.1"
        ssh_port = server.get("ssh_port", 22)
        if ssh_port in target.ports:
            server["ssh_reach_port"] = target.ports[ssh_port]
        first["reach_port"] = target.ports[first.get("port", 22)]
    else:
        server["address"] = target.connector
    first["key"] = str(keys["root"])
    user["public_keys"] = [str(keys["deploy_pub"])]
    user["private_key"] = str(keys["deploy"])
    return cfg


def start_pyinfra(config_path: Path, *extra: str) -> subprocess.Popen:
    """Start ``pyinfra -y inventory.py deploy.py`` with its output readable line by line."""
    env = {**os.environ, "VPSKIT_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    return subprocess.Popen(
        [PYINFRA, "-y", *extra, "inventory.py", "deploy.py"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
