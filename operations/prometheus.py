"""Prometheus on the host: the exporters, Prometheus and Alertmanager from the distro's packages, on 127.0.0.1 only.

Every daemon's listen address is set in its /etc/default file (the packages' own
``ARGS``), so nothing listens beyond loopback; look at it through an SSH tunnel.
Each config file is checked by the tool that reads it (``promtool``, ``amtool``,
the blackbox exporter) before it replaces the running one; a rejected file leaves
the previous one in place and fails the run.

    spec = PrometheusSpec(postgres=True, nginx=True, probes=(AppCheck("dibby", "", "https://127.0.0.1/health", "dibby.example.com"),))
    prometheus_monitoring(spec)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Which
from pyinfra.operations import files, server, systemd

from .batched import directory_present, packages_installed, unit_running
from .contribution import Contribution
from .monitor import AppCheck
from .render import FILES_DIR, render
from .snapshot import facts_through_snapshot
from .users import user_present
from .validated import checked_file

CONFIG_DIR = "/etc/prometheus"
PROMETHEUS_CONF = f"{CONFIG_DIR}/prometheus.yml"
RULES_FILE = f"{CONFIG_DIR}/vpskit-rules.yml"
ALERTMANAGER_CONF = f"{CONFIG_DIR}/alertmanager.yml"
BLACKBOX_CONF = f"{CONFIG_DIR}/blackbox.yml"
# The node exporter's textfile collector reads *.prom here; vpskit-health writes the backup times.
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
METRICS_FILE = f"{TEXTFILE_DIR}/vpskit.prom"
# nginx's stub_status, for the nginx exporter only.
STUB_STATUS_CONF = "/etc/nginx/conf.d/vpskit-stub-status.conf"
STUB_STATUS_PORT = 8089
SCRAPE_INTERVAL = "15s"


@dataclass(frozen=True)
class Daemon:
    """One of the packages: its scrape job, its loopback port, and the ``ARGS`` of its /etc/default file."""

    package: str
    job: str
    port: int
    args: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        return f"{self.package}.service"

    @property
    def listen(self) -> str:
        return f"--web.listen-address=127.0.0.1:{self.port}"


PROMETHEUS = Daemon("prometheus", "prometheus", 9090)
# An empty cluster address turns off the gossip listener (0.0.0.0:9094 otherwise): one host, one Alertmanager.
ALERTMANAGER = Daemon("prometheus-alertmanager", "alertmanager", 9093, ("--cluster.listen-address=",))
NODE = Daemon("prometheus-node-exporter", "node", 9100, (f"--collector.textfile.directory={TEXTFILE_DIR}",))
BLACKBOX = Daemon("prometheus-blackbox-exporter", "blackbox", 9115, (f"--config.file={BLACKBOX_CONF}",))
POSTGRES = Daemon("prometheus-postgres-exporter", "postgres", 9187)
NGINX = Daemon("prometheus-nginx-exporter", "nginx", 9113, (f"--nginx.scrape-uri=http://127.0.0.1:{STUB_STATUS_PORT}/stub_status",))
# mtail counts nginx's answers by status from its access log (stub_status has no status codes): the 5xx rate.
MTAIL = Daemon("mtail", "mtail", 3903)
MTAIL_PROGRAM = "/etc/mtail/vpskit-nginx.mtail"
NGINX_ACCESS_LOG = "/var/log/nginx/access.log"
EVERY = (PROMETHEUS, ALERTMANAGER, NODE, BLACKBOX, POSTGRES, NGINX, MTAIL)
# The ports these take on 127.0.0.1 (an app may not use them).
PORTS = tuple(d.port for d in EVERY) + (STUB_STATUS_PORT,)
# The PostgreSQL role the exporter logs in as, by peer authentication over the Unix socket (it runs as this OS user).
POSTGRES_ROLE = "prometheus"


@dataclass(frozen=True)
class AlertLimits:
    """Thresholds of the alert rules."""

    cpu_percent: int = 80
    memory_percent: int = 85
    disk_percent: int = 80
    # How long CPU, memory or disk stay over their threshold before the alert fires.
    for_minutes: int = 5
    app_down_minutes: int = 2
    # Share of nginx's answers that are 5xx, over 5 minutes.
    error_rate_percent: int = 5
    backup_age_hours: int = 26
    cert_days: int = 14
    # Mount points the disk alert watches.
    disks: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class PrometheusSpec:
    """What Prometheus watches on one host, and where its alerts go."""

    # Samples are kept this long (Prometheus duration) and up to this size, the oldest dropped first.
    retention: str = "15d"
    retention_size: str = "2GB"
    # The PostgreSQL exporter (PostgreSQL runs here), on this server port.
    postgres: bool = False
    postgres_port: int = 5432
    # The nginx exporter, reading stub_status on loopback, and mtail reading nginx's access log (nginx is the front proxy).
    nginx: bool = False
    # ... and the nginx exporter with it, where the release's runs (``Release.nginx_exporter``).
    nginx_exporter: bool = True
    # The apps' health URLs, probed by the blackbox exporter (``AppCheck`` with a url).
    probes: tuple[AppCheck, ...] = ()
    # The backup items whose age is alerted on (from vpskit-health's metrics file).
    backup_items: tuple[str, ...] = ()
    alerts: AlertLimits = AlertLimits()
    # Alertmanager receivers: ``notifier_settings(...)`` entries (the health check's notifiers).
    notifiers: tuple[dict, ...] = ()
    # How often Alertmanager repeats an alert that keeps firing.
    repeat_hours: int = 24
    daemons: tuple[Daemon, ...] = field(init=False, default=())

    def __post_init__(self):
        wanted = (PROMETHEUS, ALERTMANAGER, NODE)
        wanted += (
            (BLACKBOX,) * bool(self.probes)
            + (POSTGRES,) * self.postgres
            + (NGINX,) * (self.nginx and self.nginx_exporter)
            + (MTAIL,) * self.nginx
        )
        object.__setattr__(self, "daemons", wanted)


def contribution(spec: PrometheusSpec | None) -> Contribution:
    """The packages and units of the daemons ``spec`` runs (the health report watches the units); nothing when off.

    Their packages join the base system's apt run, which ``prometheus_listen_flags`` goes before:
    each daemon's first start reads its /etc/default file and listens on loopback only.
    """
    if spec is None:
        return Contribution()
    return Contribution(packages=tuple(d.package for d in spec.daemons), units=tuple(d.unit for d in spec.daemons))


def daemon_args(spec: PrometheusSpec, daemon: Daemon) -> str:
    """The ``ARGS`` line of ``daemon``: loopback only, plus what vpskit sets (retention for Prometheus)."""
    args = [daemon.listen, *daemon.args]
    if daemon is PROMETHEUS:
        args += [f"--storage.tsdb.retention.time={spec.retention}", f"--storage.tsdb.retention.size={spec.retention_size}"]
    return " ".join(args)


def defaults_file(spec: PrometheusSpec, daemon: Daemon) -> str:
    """/etc/default/<package>: the environment its unit starts it with."""
    head = f"# Managed by vpskit: {daemon.package} on 127.0.0.1:{daemon.port} only."
    if daemon is MTAIL:
        # Its unit builds the command line itself from these (and starts nothing without LOGS).
        return "\n".join([head, "HOST=127.0.0.1", f"PORT={daemon.port}", f"LOGS={NGINX_ACCESS_LOG}"]) + "\n"
    lines = [head, f'ARGS="{daemon_args(spec, daemon)}"']
    if daemon is POSTGRES:
        lines.append(f"DATA_SOURCE_NAME='user={POSTGRES_ROLE} host=/run/postgresql port={spec.postgres_port} dbname=postgres'")
    return "\n".join(lines) + "\n"


def scrape_config(spec: PrometheusSpec) -> str:
    """prometheus.yml: every daemon's own metrics, the app probes, the rules, and Alertmanager."""
    probes = [p for p in spec.probes if p.url]
    return render(
        "prometheus.yml.j2",
        interval=SCRAPE_INTERVAL,
        rules_file=RULES_FILE,
        alertmanager_port=ALERTMANAGER.port,
        jobs=[(d.job, d.port) for d in spec.daemons],
        probes=probes,
        blackbox_port=BLACKBOX.port,
    )


def alert_rules(spec: PrometheusSpec) -> str:
    """The alert rules file, with ``spec``'s thresholds."""
    a = spec.alerts
    return render(
        "prometheus-rules.yml.j2",
        a=a,
        disks="|".join(a.disks),
        probes=bool(spec.probes),
        error_rate=spec.nginx,
        backups=bool(spec.backup_items),
        backup_age_hours=a.backup_age_hours,
        cert_days=a.cert_days,
    )


def blackbox_config(probes: tuple[AppCheck, ...]) -> str:
    """blackbox.yml: a module per app, answering healthy like vpskit-health (below 400; 401 behind basic auth)."""

    healthy = [200, 201, 202, 204, 301, 302, 303, 307, 308]
    return render("blackbox.yml.j2", probes=[dict(asdict(p), codes=healthy + [401] * p.basic_auth) for p in probes])


def receivers(notifiers: tuple[dict, ...]) -> dict[str, list[dict]]:
    """Alertmanager's receiver configs for the health check's notifiers, by kind.

    webhook and ntfy get Alertmanager's own JSON; slack and discord their native receivers; email goes through the
    same SMTP relay (STARTTLS, or TLS from the start on port 465).
    """
    out: dict[str, list[dict]] = {}
    for n in notifiers:
        kind = n["kind"]
        if kind == "email":
            cfg = {
                "to": ", ".join(n["mail_to"]),
                "from": n["mail_from"],
                "smarthost": f"{n['smtp_host']}:{n['smtp_port']}",
                "require_tls": n["smtp_security"] == "starttls",
                "send_resolved": True,
            }
            if n["smtp_user"]:
                cfg.update(auth_username=n["smtp_user"], auth_password=n["password"])
            out.setdefault("email_configs", []).append(cfg)
        elif kind == "slack":
            out.setdefault("slack_configs", []).append({"api_url": n["url"], "send_resolved": True})
        elif kind == "discord":
            out.setdefault("discord_configs", []).append({"webhook_url": n["url"], "send_resolved": True})
        else:
            out.setdefault("webhook_configs", []).append({"url": n["url"], "send_resolved": True})
    return out


def alertmanager_config(spec: PrometheusSpec) -> str:
    """alertmanager.yml: one route, every alert to the notifiers, repeated every ``repeat_hours`` while it fires."""
    return render("alertmanager.yml.j2", receivers=receivers(spec.notifiers), remind_hours=spec.repeat_hours)


def stub_status_site() -> str:
    return (
        "# Managed by vpskit: nginx's connection counters for the Prometheus nginx exporter, on loopback only.\n"
        "server {\n"
        f"    listen 127.0.0.1:{STUB_STATUS_PORT};\n"
        "    access_log off;\n"
        "    location = /stub_status { stub_status; }\n"
        "    location / { return 404; }\n"
        "}\n"
    )


@deploy("Prometheus listen flags")
def prometheus_listen_flags(spec: PrometheusSpec) -> dict[Daemon, bool]:
    """
    Ensure each daemon's /etc/default file (loopback only, vpskit's flags) and the packages' system user exist.

    Run before the daemons' packages are installed: their first start is on loopback already (dpkg
    keeps an existing /etc/default file, which is a conffile of the package). Returns, by daemon,
    whether its flags change in this run (it then needs a restart).

    + spec: the daemons and their settings (``PrometheusSpec``)

    **Example:**

    .. code:: python

        restart = prometheus_listen_flags(PrometheusSpec(retention="30d"))
    """
    # The packages' system user first, as they make it: the PostgreSQL exporter's package gives its
    # file to that user (640), and so does vpskit.
    facts_through_snapshot(server.group)(name="prometheus system group", group="prometheus", system=True)
    user_present(
        name="prometheus system user", user="prometheus", group="prometheus", system=True,
        home="/var/lib/prometheus", create_home=False, shell="/usr/sbin/nologin",
    )  # fmt: skip
    restart = {}
    for d in spec.daemons:
        owner = "prometheus" if d is POSTGRES else "root"
        args = checked_file(
            name=f"{d.package}: loopback only", dest=f"/etc/default/{d.package}", content=defaults_file(spec, d),
            mode="640" if d is POSTGRES else "644", user=owner, group=owner,
        )  # fmt: skip
        restart[d] = args.will_change
    return restart


@deploy("Prometheus monitoring")
def prometheus_monitoring(spec: PrometheusSpec | None, flags_changed: dict[Daemon, bool] | None = None):
    """
    Ensure Prometheus, Alertmanager and the exporters run from the distro's packages, on 127.0.0.1 only.

    + spec: what to watch and where alerts go (``PrometheusSpec``); None: none of them runs (``prometheus_stopped``)
    + flags_changed: what ``prometheus_listen_flags`` returned earlier in the run (None: it runs here, first)

    **Example:**

    .. code:: python

        prometheus_monitoring(PrometheusSpec(retention="30d", notifiers=({"kind": "webhook", "url": "https://hooks.example.com/x"},)))
    """
    if spec is None:
        prometheus_stopped()
        return
    restart = dict(prometheus_listen_flags(spec) if flags_changed is None else flags_changed)
    packages_installed(name="Install Prometheus, Alertmanager and exporters", packages=[d.package for d in spec.daemons])
    directory_present(name="Textfile metrics directory", path=TEXTFILE_DIR, mode="755", user="root", group="root")

    if spec.nginx:
        site = checked_file(name="nginx stub_status on loopback", dest=STUB_STATUS_CONF, content=stub_status_site(), validate="nginx -t")
        systemd.service(name="Reload nginx for stub_status", service="nginx", reloaded=True, _if=site.did_change)
        program = checked_file(
            name="mtail: nginx answers by status",
            dest=MTAIL_PROGRAM,
            content=(FILES_DIR / "vpskit-nginx.mtail").read_bytes(),
            # mtail reads *.mtail files of a directory: check the staged file under that name, alone.
            validate='(d=$(mktemp -d) && cp {path} "$d/check.mtail" && mtail --compile_only --progs "$d"; rc=$?; rm -rf "$d"; exit $rc)',
        )
        restart[MTAIL] = restart[MTAIL] or program.will_change
    if spec.probes:
        blackbox = checked_file(
            name="Blackbox probes of the apps",
            dest=BLACKBOX_CONF,
            content=blackbox_config(spec.probes),
            validate="prometheus-blackbox-exporter --config.check --config.file={path} 2>&1",
        )
        restart[BLACKBOX] = restart[BLACKBOX] or blackbox.will_change

    # Rules first: promtool checks the main config with the rule files it names.
    rules = checked_file(name="Alert rules", dest=RULES_FILE, content=alert_rules(spec), validate="promtool check rules {path}")
    conf = checked_file(
        name="Prometheus scrape config", dest=PROMETHEUS_CONF, content=scrape_config(spec), validate="promtool check config {path}"
    )
    alertmanager = checked_file(
        name="Alertmanager routes to the notifiers",
        dest=ALERTMANAGER_CONF,
        content=alertmanager_config(spec),
        validate="amtool check-config {path}",
        mode="640",
        group="prometheus",
    )

    # New flags restart a daemon; new config or rules are reloaded (SIGHUP) by Prometheus and Alertmanager.
    reload = {PROMETHEUS: rules.will_change or conf.will_change, ALERTMANAGER: alertmanager.will_change}
    for d in spec.daemons:
        unit_running(name=f"{d.package} runs", unit=d.unit, restarted=restart[d], reloaded=reload.get(d, False) and not restart[d])


@deploy("Prometheus monitoring off")
def prometheus_stopped():
    """
    Ensure none of vpskit's Prometheus daemons runs (``[monitor] prometheus`` turned off), nor nginx's stub_status;
    packages and data stay.

    **Example:**

    .. code:: python

        prometheus_stopped()
    """
    if not host.get_fact(Which, command="prometheus"):
        host.noop("Prometheus is not installed")
        return
    for d in EVERY:
        systemd.service(name=f"Stop {d.package}", service=d.unit, running=False, enabled=False)
    site = files.file(name="No nginx stub_status", path=STUB_STATUS_CONF, present=False)
    systemd.service(name="Reload nginx without stub_status", service="nginx", reloaded=True, _if=site.did_change)
