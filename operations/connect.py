"""How the controller gets in: pick the first configured way in that works.

A fresh VPS lets root in on port 22; after hardening only the deploy user on
the new port gets in. The same ``pyinfra inventory.py deploy.py`` command must
work before, after, and after a run that died half-way, so the inventory
tries each way in (deploy user first) with a real SSH login and hands pyinfra
the first one that succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config


@dataclass(frozen=True)
class WayIn:
    user: str
    port: int
    key: str  # private key path, "" for agent/defaults
    password_env: str = ""

    def describe(self) -> str:
        how = f"key {self.key}" if self.key else ("password" if self.password_env else "agent/default keys")
        return f"{self.user}@port {self.port} ({how})"


def ways_in(config: Config, remembered_ports: list[int] = ()) -> list[WayIn]:
    """Candidate logins, most hardened first, without repeats.

    ``remembered_ports`` are ports that worked on earlier runs: after ``ssh_port`` is
    changed in the config, sshd still listens on the old one until the run moves it.
    """
    s, du, fl = config.server, config.deploy_user, config.first_login
    du_key = str(config.path(du.private_key)) if du.private_key else ""
    fl_key = str(config.path(fl.key)) if fl.key else ""
    ports = [s.reach_port, *remembered_ports, fl.reach]
    candidates = [WayIn(du.name, p, du_key) for p in ports] + [WayIn(fl.user, p, fl_key, fl.password_env) for p in ports]
    seen, out = set(), []
    for c in candidates:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


@dataclass(frozen=True)
class Attempt:
    """One login attempt: ``error`` None when it logged in; ``host_key`` the key sshd answered with ('' if none)."""

    error: str | None
    host_key: str = ""  # "ssh-ed25519 SHA256:..." as ssh-keygen -l shows it


def fingerprint(key) -> str:
    """A paramiko host key as ``TYPE SHA256:...`` (OpenSSH's fingerprint form)."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def login(address: str, way: WayIn, timeout: float = 8.0, sock: socket.socket | None = None) -> Attempt:
    """Log in once with ``way`` (over ``sock`` when already connected): whether it worked, and the host key that answered."""
    import logging

    import paramiko

    # A port that accepts and then closes (a NAT forward with nothing behind it)
    # makes paramiko's transport thread log a traceback: the failure is reported here instead.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    if sock is None:
        try:
            sock = socket.create_connection((address, way.port), timeout=timeout)
        except OSError as e:
            return Attempt(f"cannot connect: {e.strerror or e}")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    password = os.environ.get(way.password_env) if way.password_env else None

    def answered() -> str:
        transport = client.get_transport()
        key = transport.get_remote_server_key() if transport and transport.host_key_type else None
        return fingerprint(key) if key else ""

    try:
        client.connect(
            address,
            port=way.port,
            username=way.user,
            key_filename=way.key or None,
            password=password,
            look_for_keys=not way.key,
            allow_agent=not way.key,
            sock=sock,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        return Attempt(None, answered())
    except paramiko.AuthenticationException:
        return Attempt("authentication refused", answered())
    except (paramiko.SSHException, OSError, EOFError) as e:
        return Attempt(f"ssh failed: {e}", answered())
    finally:
        client.close()


def try_login(address: str, way: WayIn, timeout: float = 8.0) -> str | None:
    """Log in once with ``way``; None when it works, else why it did not."""
    return login(address, way, timeout).error


class PortProbe:
    """Connects to every port at once and waits for sshd's greeting, so no login waits on a port nobody answers.

    A port behind a firewall that drops packets (UFW's default) costs a full timeout per
    login tried on it; probed together, all the silent ports cost one timeout in all, and
    less once another port has answered: the same sshd answers on all its ports within
    ``settle`` seconds of each other (None: every port gets the whole timeout). The greeting is only peeked at: the first login on a
    port goes over the probe's connection, so sshd sees no extra connection for it.
    """

    def __init__(self, address: str, ports, timeout: float = 8.0, settle: float | None = 1.0):
        self.timeout, self.settle = timeout, settle
        self.started = time.monotonic()
        self._done = threading.Condition()
        self._results: dict[int, tuple[socket.socket | None, str]] = {}  # port -> (connection, why silent)
        self._answered_at: float | None = None
        for port in dict.fromkeys(ports):
            threading.Thread(target=self._probe, args=(address, port), daemon=True).start()

    def _probe(self, address: str, port: int) -> None:
        sock, why = None, ""
        try:
            sock = socket.create_connection((address, port), timeout=self.timeout)
            sock.settimeout(max(0.1, self.started + self.timeout - time.monotonic()))  # connect and greeting share the timeout
            if not sock.recv(1, socket.MSG_PEEK):
                why = "no SSH answer: the connection was closed"
        except TimeoutError:
            why = f"no SSH answer within {self.timeout:g} s"
        except OSError as e:
            why = f"cannot connect: {e.strerror or e}"
        if why and sock is not None:
            sock.close()
            sock = None
        with self._done:
            if port in self._results:  # given up on already
                if sock is not None:
                    sock.close()
                return
            self._results[port] = (sock, why)
            if not why and self._answered_at is None:
                self._answered_at = time.monotonic()
            self._done.notify_all()

    def silent(self, port: int) -> str:
        """Why nothing answers SSH on ``port`` ('' when sshd greeted), waiting for it as long as it may still answer."""
        with self._done:
            while port not in self._results:
                deadline = self.started + self.timeout
                settling = self._answered_at is not None and self.settle is not None
                if settling:
                    deadline = min(deadline, self._answered_at + self.settle)
                left = deadline - time.monotonic()
                if left <= 0:
                    why = f"no SSH answer within {time.monotonic() - self.started:.1f} s"
                    self._results[port] = (None, f"{why}, while another port answered" if settling else why)
                    break
                self._done.wait(left)
            return self._results[port][1]

    def take(self, port: int) -> socket.socket | None:
        """The probe's connection to ``port`` for a login to use (once), None when it has none left."""
        with self._done:
            sock, why = self._results.get(port, (None, ""))
            if sock is not None:
                self._results[port] = (None, why)
            return sock

    def attempt(self, address: str, way: WayIn) -> Attempt:
        """Log in with ``way``, over the probe's connection to its port while it has one."""
        return login(address, way, sock=self.take(way.port))

    def close(self) -> None:
        """Close the connections no login used."""
        with self._done:
            for port, (sock, why) in list(self._results.items()):
                if sock is not None:
                    sock.close()
                    self._results[port] = (None, why)


class _AllAnswer:
    """The probe used with an ``attempt`` callback: every port counts as answering."""

    def __init__(self, attempt):
        self.attempt = attempt

    def silent(self, port: int) -> str:
        return ""

    def close(self) -> None:
        pass


def host_data(config: Config, way: WayIn | None) -> dict:
    """pyinfra host data for connecting with ``way`` (None: non-SSH connector)."""
    data: dict = {}
    if way is not None:
        data.update(ssh_user=way.user, ssh_port=way.port)
        if way.key:
            data["ssh_key"] = way.key
        if way.password_env and os.environ.get(way.password_env):
            data["ssh_password"] = os.environ[way.password_env]
        if config.server.known_hosts_file:
            data["ssh_known_hosts_file"] = str(config.path(config.server.known_hosts_file))
        if way.user != "root":
            data["_sudo"] = True
    return data


# What earlier runs learnt about the host, kept beside the config (like known_hosts):
# {address: {"ports": [newest first], "host_keys": {type: "SHA256:..."}}}. The ports are
# bound to the host keys: a remembered port is only used while it answers with them.
STATE_FILE = ".vpskit-state.json"
REMEMBERED = 3


def _state_path(config: Config) -> Path:
    return Path(config.base_dir) / STATE_FILE


def _state(config: Config) -> dict:
    try:
        data = json.loads(_state_path(config).read_text())
        entry = data.get(config.server.address, {})
        return entry if isinstance(entry, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def remembered_ports(config: Config) -> list[int]:
    """Ports that logged in to this address on earlier runs, newest first."""
    try:
        return [int(p) for p in _state(config).get("ports", [])]
    except (TypeError, ValueError):
        return []


def recorded_host_keys(config: Config) -> dict[str, str]:
    """The host keys (type -> fingerprint) this config's host answered with on earlier runs."""
    keys = _state(config).get("host_keys", {})
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}


def remember_port(config: Config, port: int, host_key: str = "") -> None:
    """Record that ``port`` worked, answering with ``host_key`` (kept beside the config file, like known_hosts)."""
    path = _state_path(config)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    ports = [port, *[p for p in remembered_ports(config) if p != port]][:REMEMBERED]
    keys = recorded_host_keys(config)
    if host_key:
        kind, _, fp = host_key.partition(" ")
        keys[kind] = fp
    data[config.server.address] = {"ports": ports, **({"host_keys": keys} if keys else {})}
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError:
        pass  # a read-only checkout only loses the hint


def key_conflict(known: dict[str, str], host_key: str) -> str:
    """The known fingerprint ``host_key`` contradicts ('' when it matches or its type is not known)."""
    kind, _, fp = host_key.partition(" ")
    return "" if known.get(kind, fp) == fp else f"{kind} {known[kind]}"


def commands_sent_at_once(connector) -> bool:
    """
    Send each command to the host at once: Nagle's algorithm off on the SSH connection's socket.

    With it on, the last small packet of a command waits for the host to acknowledge the one
    before, and the host holds that acknowledgement back for up to 40 ms: every command of a
    run pays the wait. No-op for connectors without a socket of their own (docker, local).
    Returns whether the socket was set.

    + connector: the host's pyinfra connector (``host.connector``)

    **Example:**

    .. code:: python

        commands_sent_at_once(host.connector)
    """
    transport = getattr(getattr(connector, "client", None), "get_transport", lambda: None)()
    sock = getattr(transport, "sock", None)
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


def unused_ways(failures: list[str]) -> list[str]:
    """The lines of ``failures`` about ways in left unused because they reach another host (or none known)."""
    return [f for f in failures if "not used:" in f]


def _attempted(result) -> Attempt:
    """An ``attempt`` callback's answer: an Attempt, or just the error (None: logged in)."""
    return result if isinstance(result, Attempt) else Attempt(result)


def choose_way_in(config: Config, attempt=None, rounds: int = 2, pause: float = 3.0) -> tuple[WayIn | None, list[str]]:
    """The first way in that logs in to this config's host, and what each failed attempt said.

    The configured ways come first and say which host this is: the host keys recorded on
    earlier runs, else the key the first configured way to answer shows. Ports remembered
    from earlier runs come last, and only when they answer with that same host key. A way
    answering with another key reaches another machine: it is not used, and its line says
    which keys. All ways are tried ``rounds`` times, ``pause`` seconds apart: sshd may be
    in the middle of a restart (a run that died a moment ago left one going). Each round
    first probes every port at once (PortProbe): a way on a port where sshd does not
    answer is not tried (the last round waits the full timeout for every port).
    ``attempt(address, way)`` replaces the real login (and the probe).
    """
    if not config.server.uses_ssh:
        return None, []
    configured = ways_in(config)
    remembered = [w for w in ways_in(config, remembered_ports(config)) if w not in configured]
    failures: list[str] = []
    address = config.server.address
    for round_ in range(rounds):
        if round_:
            time.sleep(pause)
        failures = []
        # type -> (fingerprint, where it comes from): what this config's host is.
        known = {kind: (fp, f"recorded in {STATE_FILE}") for kind, fp in recorded_host_keys(config).items()}
        # The last round waits the whole timeout on every port: a slow sshd is not skipped twice.
        settle = 1.0 if round_ < rounds - 1 else None
        ports = [w.port for w in (*configured, *remembered)]
        probe = PortProbe(address, ports, settle=settle) if attempt is None else _AllAnswer(attempt)
        try:
            way, host_key, conflicts = _first_way_in(address, configured, remembered, probe, known, failures)
        finally:
            probe.close()
        if way is not None:
            remember_port(config, way.port, host_key)
            return way, failures
    raise NoWayIn(address, failures, host_key_conflict=conflicts)


def _first_way_in(address, configured, remembered, probe, known, failures):
    """One round of choose_way_in: (the way that logged in or None, its host key, whether a way showed another host key)."""
    conflicts = contradicted = False
    for way in [*configured, *remembered]:
        is_remembered = way in remembered
        if is_remembered and (contradicted or not known):
            why = "the configured ways answered with another host key" if known else "this config's host key is not known"
            failures.append(f"{way.describe()}: remembered from an earlier run, not used: {why}")
            continue
        silent = probe.silent(way.port)
        if silent:
            failures.append(f"{way.describe()}: {silent}")
            continue
        result = _attempted(probe.attempt(address, way))
        if result.host_key:
            kind, _, fp = result.host_key.partition(" ")
            expected, source = known.get(kind, (fp, ""))
            if expected != fp:
                conflicts = True
                contradicted = contradicted or not is_remembered
                failures.append(
                    f"{way.describe()}: not used: it answered with host key {result.host_key}, "
                    f"but this config's host has {kind} {expected} ({source})"
                )
                continue
            known.setdefault(kind, (fp, f"shown on port {way.port}"))
        if result.error is None:
            return way, result.host_key, conflicts
        failures.append(f"{way.describe()}: {result.error}")
    return None, None, conflicts


class NoWayIn(Exception):
    def __init__(self, address: str, failures: list[str], host_key_conflict: bool = False):
        self.failures = failures
        tried = "\n".join(f"  - {f}" for f in failures)
        rebuilt = (
            f"If this server was reinstalled, or the config now names another server, remove {address} "
            f"from {STATE_FILE} beside the config and run again.\n"
            if host_key_conflict
            else ""
        )
        super().__init__(
            f"cannot log in to {address} any configured way:\n{tried}\n{rebuilt}"
            "If you lost the deploy user's key, log in through your provider's web console "
            "(or rescue system), add a new public key to ~DEPLOY_USER/.ssh/authorized_keys, "
            "point deploy_user.public_keys/private_key at it, and run again. See README, 'Recovery'."
        )


def login_prover(config: Config):
    """A check that a FRESH key login as the deploy user on the hardened port works.

    Runs on the machine running pyinfra, as the user will log in next time. None
    for non-SSH connectors (the host then checks that sshd answers instead).
    """
    if not config.server.uses_ssh:
        return None
    way = ways_in(config)[0]  # the deploy user on the hardened port

    def prove() -> str | None:
        result = login(config.server.address, way)
        conflict = key_conflict(recorded_host_keys(config), result.host_key) if result.host_key else ""
        if conflict:
            return f"port {way.port} answered with host key {result.host_key}, but this config's host has {conflict}"
        if result.error is None:
            remember_port(config, way.port, result.host_key)  # sshd may move again before the next run
        return result.error

    return prove


def known_hosts_entry(config: Config) -> tuple[str, list[str]]:
    """The known_hosts file pyinfra checks this host against, and the names the host may be filed under there.

    The names are every address:port a way in uses (``[address]:port`` off port 22); ("", [])
    for non-SSH connectors.
    """
    if not config.server.uses_ssh:
        return "", []
    from .knownhosts import host_name

    s = config.server
    path = str(config.path(s.known_hosts_file)) if s.known_hosts_file else os.path.expanduser("~/.ssh/known_hosts")
    ports = dict.fromkeys(w.port for w in ways_in(config, remembered_ports(config)))
    return path, [host_name(s.address, p) for p in ports]
