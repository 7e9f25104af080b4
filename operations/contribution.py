"""What one concern adds to the run beyond its own steps, through one small interface.

Each concern module has a ``contribution(...)`` function of plain arguments that
returns a ``Contribution``: the distro packages its steps need (installed in the
base system's one apt run; each step still ensures its own) and the systemd units
the health report watches. The wiring (``operations.plan``) adds them up.

    from operations import firewall, postgres
    extra = combined([firewall.contribution(enabled=True), postgres.contribution(databases=1)])
    extra.packages   # ('ufw', 'postgresql')
    extra.units      # ('postgresql.service',)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contribution:
    """Packages a concern needs from the distro's archive, and the units the health report checks."""

    packages: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


def combined(parts: list[Contribution]) -> Contribution:
    """All ``parts`` in order, each package and unit once."""
    packages = dict.fromkeys(p for part in parts for p in part.packages)
    units = dict.fromkeys(u for part in parts for u in part.units)
    return Contribution(tuple(packages), tuple(units))
