"""vpskit: take one Ubuntu 24.04 / Debian 12 VPS to the configured state.

    pyinfra inventory.py deploy.py          # apply
    pyinfra inventory.py deploy.py --dry    # show what would change
"""

from pyinfra import host

from operations.config import load_config
from operations.system import base_system, host_distro
from operations.users import deploy_user
from operations.web import web_stack

config = load_config(host.data.vpskit_config)
distro = host_distro()

base_system(config.server)
deploy_user(config.deploy_user, config.public_keys(), sudo_group=distro.sudo_group)

web_stack(config, distro)
