"""vpskit: take one Ubuntu 24.04 / Debian 12 VPS to the configured state.

    pyinfra inventory.py deploy.py          # apply
    pyinfra inventory.py deploy.py --dry    # show what would change
"""

from pyinfra import host
from pyinfra.api import OperationError

from operations.config import load_config
from operations.connect import login_prover
from operations.fail2ban import fail2ban_jails
from operations.firewall import firewall
from operations.ssh import SshdState, sshd_hardened
from operations.system import base_system, host_distro
from operations.users import deploy_user
from operations.web import web_stack

config = load_config(host.data.vpskit_config)
distro = host_distro()

base_system(config.server)
deploy_user(config.deploy_user, config.public_keys(), sudo_group=distro.sudo_group)

# Hardening: firewall rules first (old and new SSH port open), then the sshd move
# proven by a fresh login, then fail2ban on the port sshd really uses.
sshd = host.get_fact(SshdState)
if sshd is None:
    raise OperationError("sshd is not installed on this host (package openssh-server)")
if config.firewall.enabled:
    firewall(
        ssh_port=config.server.ssh_port,
        ssh_ports_in_use=sshd["ports"],
        ssh_limit=config.firewall.ssh_limit,
        extra=config.firewall.allow,
    )
sshd_hardened(
    config.ssh,
    port=config.server.ssh_port,
    deploy_user=config.deploy_user.name,
    prove=login_prover(config),
    firewall=config.firewall.enabled,
    state=sshd,
)
fail2ban_jails(config.fail2ban, ssh_port=config.server.ssh_port)

web_stack(config, distro)
