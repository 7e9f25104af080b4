"""A pyinfra deploy of your own that uses vpskit's operations, without a vpskit.toml.

    pyinfra -y --data public_key="$(cat ~/.ssh/id_ed25519.pub)" my-server.example.com deploy.py

It makes an admin user, closes the firewall but for SSH, HTTP(S) and 8443, hardens
sshd, runs PostgreSQL with one app database, serves hello.test through nginx
(self-signed certificate) to an app on 127.0.0.1:8080, and runs a nightly job
from a systemd timer. A second run changes nothing.
"""

from pyinfra import host
from pyinfra.operations import apt

from operations.certbot import Issuer
from operations.firewall import UfwRule, firewall
from operations.postgres import app_database, pg_version, postgres_server
from operations.schedule import timer_service
from operations.sites import Site
from operations.ssh import SshdPolicy, sshd_hardened, sshd_state
from operations.system import host_distro
from operations.users import deploy_user
from operations.web import front_proxy

distro = host_distro()
sshd = sshd_state()

apt.update(name="Update apt's package lists", cache_time=3600)
deploy_user("ops", [host.data.public_key], sudo_group=distro.sudo_group)

# SSH stays on 22; only ops may log in, with a key, and gets two tries.
firewall(ssh_port=22, ssh_ports_in_use=sshd["ports"], extra=[UfwRule(8443)])
sshd_hardened(port=22, deploy_user="ops", policy=SshdPolicy(max_auth_tries=2), state=sshd)

# PostgreSQL on loopback; the role's password is made on the host, into /etc/hello/db.env (DATABASE_URL=...).
postgres_server(pg_version(distro), clients=[("hello", "hello")])
app_database(name="Database hello", db="hello", role="hello", secret_path="/etc/hello/db.env")

front_proxy([Site("hello", ("hello.test",), 8080)], proxy="nginx", tls=Issuer(mode="selfsigned"))

timer_service(
    unit="hello-vacuum",
    description="hello: nightly VACUUM ANALYZE",
    schedule="*-*-* 03:30:00",
    exec_start='/usr/bin/psql ${DATABASE_URL} --quiet --command "VACUUM ANALYZE"',
    env_files=("/etc/hello/db.env",),
    after=("postgresql.service",),
)
