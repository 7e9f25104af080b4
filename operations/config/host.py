"""Config sections of the host itself: the server, the ways in, the firewall, sshd and fail2ban."""

from __future__ import annotations

from dataclasses import dataclass

from .schema import ABSOLUTE, ENV_NAME, PORT, USER_NAME, setting

HOSTNAME = r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$"
PACKAGE = r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$"
ALGORITHM = r"^[a-z0-9@.+_-]+$"


@dataclass(frozen=True)
class Server:
    """The host itself and how to reach it."""

    address: str = setting(doc="IP or DNS name of the VPS, or a pyinfra connector such as `@docker/NAME`.")
    hostname: str = setting(
        "",
        "Host name to set; empty: leave it.",
        pattern=HOSTNAME,
        expect="a valid host name (letters, digits, hyphens)",
    )
    timezone: str = setting(
        "Etc/UTC",
        "Timezone name, e.g. `Europe/Berlin`.",
        pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$",
        expect="a timezone name like 'Europe/Berlin'",
    )
    ssh_port: int = setting(22, "The port sshd listens on once hardened (not 80 or 443).", **PORT)
    ssh_reach_port: int = setting(0, "The port the controller dials to reach `ssh_port` (NAT port forwards); 0: the same.", **PORT)
    known_hosts_file: str = setting("", "known_hosts file pyinfra uses for this host; empty: `~/.ssh/known_hosts`.")
    packages: tuple[str, ...] = setting(
        (), "Extra Debian/Ubuntu packages (`name` or `name=version`).", pattern=PACKAGE, expect="a Debian package name"
    )
    upgrade: str = setting("full", "`full` (apt dist-upgrade), `safe` (apt upgrade) or `none`.", choices=("full", "safe", "none"))
    apt_cache_hours: int = setting(24, "Refresh the apt cache when it is older than this.", minimum=0, unit="hours")
    unattended_upgrades: bool = setting(True, "Apply security updates daily.")
    unattended_reboot: bool = setting(False, "Reboot automatically when an update needs it.")
    unattended_reboot_time: str = setting(
        "04:00",
        "When that reboot happens.",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        expect="a time HH:MM",
        error="must be HH:MM, got {value!r}",
    )
    apt_lock_timeout: int = setting(
        600, "How long apt waits for a dpkg lock held by the VPS's own first-boot upgrades.", minimum=0, unit="seconds"
    )
    apt_proxy: str = setting(
        "",
        "apt's caching proxy, e.g. apt-cacher-ng's `http://10.0.0.5:3142`: written as `Acquire::http::Proxy` to "
        "`/etc/apt/apt.conf.d/01vpskit-proxy` before the run's first apt command, and removed when emptied. Only `http://` "
        "package sources go through it (such a proxy cannot cache `https://` downloads). Empty: apt connects directly.",
        expect="an http:// or https:// URL: host and optional port, no path, no user:password",
    )
    pip_index_url: str = setting(
        "",
        "A PEP 503 simple index (devpi, proxpi, a company mirror), e.g. `http://10.0.0.5:3141/root/pypi/+simple/`, that uv and "
        "pip install the venv apps' requirements files, plain `pyproject.toml` projects and extra packages from, and vpskit's "
        "own uv and poetry; an `http://` one is trusted by its host. Apps with a `uv.lock` or `poetry.lock` download what "
        "their lock file names. Changing it rebuilds no venv. Empty: PyPI.",
        expect="an http:// or https:// URL, no user:password",
    )
    deploy_lock_wait: int = setting(
        60, "How long a run waits for another run's deploy lock on the host before it stops, naming that run.", minimum=0, unit="seconds"
    )

    @property
    def uses_ssh(self) -> bool:
        return not self.address.startswith("@")

    @property
    def reach_port(self) -> int:
        return self.ssh_reach_port or self.ssh_port


@dataclass(frozen=True)
class FirstLogin:
    """How a fresh VPS lets you in before vpskit has run: usually root on port 22."""

    user: str = setting("root", "The provider's login user.", pattern=USER_NAME, expect="a valid user name")
    port: int = setting(22, "The port sshd listens on before hardening, as the host sees it.", **PORT)
    reach_port: int = setting(0, "The port the controller dials to reach it (NAT port forwards); 0: the same.", **PORT)
    key: str = setting("", "Private key file the controller uses; empty: ssh-agent and `~/.ssh` defaults.")
    password_env: str = setting(
        "",
        "Name of an environment variable holding the password, for providers that mail you a root password.",
        pattern=ENV_NAME,
        expect="an environment variable name",
    )

    @property
    def reach(self) -> int:
        return self.reach_port or self.port


@dataclass(frozen=True)
class DeployUser:
    """The admin user that owns the apps and is the only one who logs in after hardening."""

    name: str = setting(
        "appuser",
        "User name (not root).",
        pattern=USER_NAME,
        expect="a valid user name (lowercase letters, digits, _ or -)",
    )
    public_keys: tuple[str, ...] = setting(
        (), "Public key files (on the controller) for `authorized_keys`: required, and exactly these keys."
    )
    private_key: str = setting("", "The matching private key vpskit logs in with; empty: ssh-agent and defaults.")
    shell: str = setting(
        "/bin/bash",
        "Login shell.",
        pattern=ABSOLUTE,
        expect="an absolute path",
        error="must be an absolute path, got {value!r}",
    )
    passwordless_sudo: bool = setting(True, "sudo without a password (vpskit needs it to run as this user).")
    groups: tuple[str, ...] = setting((), "Extra groups besides `sudo`.", pattern=USER_NAME, expect="a valid group name")


@dataclass(frozen=True)
class FirewallRule:
    """A port to open in the firewall beyond SSH, 80 and 443."""

    port: int = setting(doc="Port number.", **PORT)
    proto: str = setting("tcp", "`tcp` or `udp`.", choices=("tcp", "udp"))
    source: str = setting("", "Address or network allowed; empty: from anywhere.")
    comment: str = setting(
        "",
        "Your note.",
        pattern=r"^[A-Za-z0-9 _.:-]{1,40}$",
        expect="up to 40 letters, digits, spaces and _.:-",
        error="up to 40 letters, digits, spaces and _.:-",
    )


@dataclass(frozen=True)
class Firewall:
    """UFW: deny incoming except SSH, 80, 443 and the rules listed in `allow`."""

    enabled: bool = setting(True, "Manage UFW at all.")
    allow: tuple[FirewallRule, ...] = setting((), "Extra rules, one `[[firewall.allow]]` table each.")
    ssh_limit: bool = setting(False, "UFW `limit` (6 connections in 30 s per address) on the SSH port; it can throttle the deploy itself.")


def _algorithms(doc: str):
    return setting((), doc, pattern=ALGORITHM, expect="an algorithm name")


@dataclass(frozen=True)
class Ssh:
    """sshd hardening; the port is `server.ssh_port`.

    An empty algorithm list means the lists of ssh-audit's hardened policy for the host's release, in the
    policy's order. Every list is cut down to what the host's OpenSSH supports (`ssh -Q`); names with sha1,
    cbc, md5 or umac-64 are refused.
    """

    permit_root_login: str = setting("no", "Whether root may log in over SSH.", choices=("no", "prohibit-password", "yes"))
    password_authentication: bool = setting(False, "Allow password logins.")
    kbd_interactive_authentication: bool = setting(False, "Allow keyboard-interactive logins.")
    permit_empty_passwords: bool = setting(False, "Allow empty passwords.")
    x11_forwarding: bool = setting(False, "Allow X11 forwarding.")
    max_auth_tries: int = setting(3, "Authentication attempts per connection.", minimum=1, maximum=20)
    client_alive_interval: int = setting(300, "Seconds between keep-alive probes.", minimum=0, maximum=3600, unit="seconds")
    client_alive_count_max: int = setting(3, "Unanswered probes before disconnect.", minimum=0, maximum=100)
    login_grace_time: int = setting(30, "Seconds to complete a login.", minimum=5, maximum=600, unit="seconds")
    allow_users: tuple[str, ...] = setting(
        (), "Users allowed to log in (must include the deploy user); empty: the deploy user only.",
        pattern=USER_NAME, expect="a valid user name",
    )  # fmt: skip
    kex_algorithms: tuple[str, ...] = _algorithms("Key exchange algorithms; empty: the release's hardened policy.")
    ciphers: tuple[str, ...] = _algorithms("Ciphers; empty: the release's hardened policy.")
    macs: tuple[str, ...] = _algorithms("MACs; empty: the release's hardened policy.")
    host_key_algorithms: tuple[str, ...] = _algorithms("Host key algorithms; empty: the release's hardened policy.")
    extra: dict[str, str] = setting({}, 'More sshd options, written as they are: `{ AllowTcpForwarding = "no" }`.')
    revert_after: int = setting(
        300,
        "Seconds after which an on-host timer restores the previous sshd and UFW state unless a fresh login proved the change.",
        minimum=60,
        maximum=3600,
        unit="seconds",
    )


@dataclass(frozen=True)
class Fail2ban:
    """fail2ban's sshd jail, on the port sshd really uses."""

    enabled: bool = setting(True, "Run fail2ban with an sshd jail.")
    bantime: int = setting(86400, "Seconds a ban lasts.", minimum=60, maximum=31536000, unit="seconds")
    findtime: int = setting(600, "Window in which failures count.", minimum=60, maximum=86400, unit="seconds")
    maxretry: int = setting(5, "Failures in that window before a ban.", minimum=1, maximum=100)
    ignoreip: tuple[str, ...] = setting((), "Addresses or networks never banned besides loopback (your office, your CI).")


@dataclass(frozen=True)
class Sysctl:
    """Kernel and network hardening in /etc/sysctl.d (vpskit's settings: `HARDENING` in operations/sysctl.py).

    Values the kernel refuses (inside a container, for example) are reported by the run, not failed.
    """

    enabled: bool = setting(True, "Write and apply vpskit's sysctl hardening file.")
    disable: tuple[str, ...] = setting((), 'Keys of vpskit\'s settings to leave out, e.g. `["kernel.yama.ptrace_scope"]`.')
    values: dict[str, str] = setting({}, 'Values replacing vpskit\'s or added to them: `{ "net.ipv4.conf.all.rp_filter" = "2" }`.')
