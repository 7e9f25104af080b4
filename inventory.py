"""pyinfra inventory for vpskit: one host, described by vpskit.toml.

The config is read and validated here, before pyinfra connects anywhere: a
bad config stops the run with one line per problem and nothing done on the
host. Then the first configured way in that really logs in (the deploy user
on the hardened port, else the first-login user) is handed to pyinfra, so the
same command works on a fresh VPS and on every run after it.

    pyinfra inventory.py deploy.py          # config: ./vpskit.toml or $VPSKIT_CONFIG
"""

import sys

from pyinfra.api.exceptions import InventoryError

from operations.config import ConfigError, config_path, load_config
from operations.connect import NoWayIn, choose_way_in, host_data, unused_ways

try:
    _config = load_config()
    _way, _failures = choose_way_in(_config)
except (ConfigError, NoWayIn) as e:
    raise InventoryError(str(e)) from None
for _line in unused_ways(_failures):
    print(f"vpskit: {_line}", file=sys.stderr)

vps = [
    (
        _config.server.address,
        {"vpskit_config": str(config_path().resolve()), **host_data(_config, _way)},
    )
]
