"""Kill-drill: the deploy killed at many points of an SSH port move never leaves the host without a way in.

On a fresh target per distro (base system deployed, root on 22) the deploy moves sshd 22 -> 2222, then 2222 ->
2200 -> 2222 ..., each run killed (SIGKILL) at a different point of the move.
After every kill a way in must exist, and the same command run again must
finish the move: sshd hardened on the new port only. A prober logs in all the
while; it must never go more than a few seconds without a working login.
Last, a run killed before the new port was proven is left alone: the on-host
revert timer must put the previous sshd config back by itself, and the next
run must finish the move.

The first move also replaces the RSA host key, with the known_hosts file listing the
old RSA key first for every address the runs use (as an OpenSSH client leaves it): the
run is killed while the new key is made, and every later run must still get in.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import pytest

from operations.config import load_config
from operations.connect import WayIn, choose_way_in, try_login
from tests.conftest import DISTROS
from tests.e2e.conftest import authorize_root, example_config, write
from tests.rig import run_pyinfra, start_pyinfra, start_target, target_config

pytestmark = pytest.mark.e2e

PORTS = (2222, 2200)
# (operation whose start triggers the kill, seconds to wait before killing)
KILL_POINTS = [
    # The first move also replaces the RSA host key: killed while the new key is made.
    ("SSH host keys | RSA host key of 4096 bits", 0.3),
    ("SSH | Arm the timer that restores sshd unless the change is proven", 0.0),
    ("SSH | Listen on port", 0.0),
    ("SSH | Apply: sshd on old and new port", 0.2),
    ("SSH | Prove a fresh login as appuser on port", 0.0),
    ("SSH | Hardened sshd config", 0.0),
    ("SSH | Apply: hardened sshd", 0.2),
    ("SSH | Close the old SSH port", 0.0),
]
REVERT_AFTER = 60
# sshd restarting while a probe is in flight can fail that probe: it costs its 3 s timeout plus
# the next round, longer on a loaded machine. A lockout is a way in that does not come back.
MAX_GAP = 10


class Prober:
    """Logs in (fresh SSH key logins, every way at once) in a loop; records the longest time with no way in."""

    def __init__(self, ways: list[WayIn]):
        self.ways = ways
        self.phase = "start"
        self.longest_gap = (0.0, "")
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=len(ways))

    def _any_way_in(self) -> bool:
        futures = [self._pool.submit(try_login, "127.0.0.1", way, 3) for way in self.ways]
        return any(f.result() is None for f in as_completed(futures))

    def _run(self):
        last_ok = time.time()
        while not self._stop.is_set():
            if self._any_way_in():
                last_ok = time.time()
            gap = time.time() - last_ok
            if gap > self.longest_gap[0]:
                self.longest_gap = (gap, self.phase)
            self.rounds += 1
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._pool.shutdown()


def kill_at(config, point: str, delay: float) -> str:
    """Run the deploy and SIGKILL it when ``point`` starts; the output up to then."""
    proc = start_pyinfra(config)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Starting operation:" in line and point in line:
            time.sleep(delay)
            proc.kill()
            break
    proc.wait(timeout=60)
    output = "".join(lines)
    assert proc.returncode == -9, f"the run ended before reaching {point!r}:\n{output[-3000:]}"
    return output


def ufw_ports(target) -> set[str]:
    """The "port/proto" of every rule UFW lists."""
    return {line.split()[0] for line in target.out("ufw status").splitlines() if "ALLOW" in line or "LIMIT" in line}


def rsa_known_first(target, known_hosts: str, ports) -> None:
    """known_hosts lists the host's current RSA key first for each published port, then its ed25519 key."""
    rsa, ed25519 = (target.out(f"cut -d' ' -f1,2 /etc/ssh/ssh_host_{k}_key.pub") for k in ("rsa", "ed25519"))
    lines = [f"[127.0.0.1]:{target.ports[p]} {key}" for p in ports for key in (rsa, ed25519)]
    with open(known_hosts, "w") as f:
        f.write("\n".join(lines) + "\n")


def ssh_ports_listening(target) -> set[int]:
    out = target.out("ss -Hltn | awk '{print $4}'")
    return {int(a.rsplit(":", 1)[1]) for a in out.split()} & {22, *PORTS}


@pytest.mark.parametrize("distro", DISTROS)
def test_deploy_killed_during_port_moves_always_leaves_a_way_in(distro, docker_engine, images, keys, tmp_path):
    target = start_target(docker_engine, images[distro], distro, publish=(22, *PORTS))
    try:
        authorize_root(target, keys)
        configs = {}
        for port in PORTS:
            raw = example_config()
            raw["server"]["ssh_port"] = port
            raw["ssh"] = {"revert_after": REVERT_AFTER}
            raw["fail2ban"] = {"enabled": False}  # the prober's refused root logins must not ban the test machine
            raw["monitor"]["prometheus"] = False  # not what is drilled: each run gets to the SSH move sooner
            configs[port] = write(tmp_path / f"move-to-{port}.toml", target_config(raw, target, keys))
        deploy_key = str(keys["deploy"])
        ways = [WayIn("appuser", target.ports[p], deploy_key) for p in PORTS] + [
            WayIn("appuser", target.ports[22], deploy_key),
            WayIn("root", target.ports[22], str(keys["root"])),
        ]
        # A fresh VPS with its base system done (root still on 22): the package
        # upgrades restart sshd the distro's way, which is not what is drilled here.
        kill_at(configs[PORTS[0]], "Firewall | Install ufw", 0.0)
        rsa_known_first(target, load_config(configs[PORTS[0]]).server.known_hosts_file, [22, *PORTS])
        with Prober(ways) as prober:
            for i, (point, delay) in enumerate(KILL_POINTS):
                port = PORTS[i % 2]
                prober.phase = f"move to {port}, killed at {point!r}"
                kill_at(configs[port], point, delay)
                way, _ = choose_way_in(load_config(configs[port]))  # raises when there is no way in
                assert way is not None
                run = run_pyinfra(configs[port])
                assert run.errors == 0
                assert ssh_ports_listening(target) == {port}, f"after kill at {point!r}"
                assert target.out("sshd -T | grep -E '^(port|permitrootlogin) '").split("\n") == [
                    f"port {port}",
                    "permitrootlogin no",
                ]
                old = PORTS[(i + 1) % 2] if i else 22
                assert f"{port}/tcp" in ufw_ports(target) and f"{old}/tcp" not in ufw_ports(target)
                assert try_login("127.0.0.1", WayIn("appuser", target.ports[port], deploy_key)) is None
            # Last: a run that dies after sshd listens on both ports but before the new one
            # is proven is left alone; the host's own timer puts the previous config back.
            port, previous = PORTS[len(KILL_POINTS) % 2], PORTS[(len(KILL_POINTS) + 1) % 2]
            prober.phase = "unproven move left to the revert timer"
            before = target.out("cat /etc/ssh/sshd_config.d/00-vpskit.conf")
            kill_at(configs[port], "SSH | Prove a fresh login as appuser on port", 0.0)
            assert ssh_ports_listening(target) == {port, previous}
            assert target.out("systemctl is-active vpskit-ssh-revert.timer") == "active"
            deadline = time.time() + REVERT_AFTER + 60
            while time.time() < deadline and ssh_ports_listening(target) != {previous}:
                time.sleep(2)
            assert ssh_ports_listening(target) == {previous}
            assert target.out("cat /etc/ssh/sshd_config.d/00-vpskit.conf") == before
            assert try_login("127.0.0.1", WayIn("appuser", target.ports[previous], deploy_key)) is None
            run_pyinfra(configs[port])
            assert ssh_ports_listening(target) == {port}
        assert prober.rounds > 20
        gap, phase = prober.longest_gap
        assert gap < MAX_GAP, f"no way in for {gap:.1f}s during: {phase}"
    finally:
        target.remove()
