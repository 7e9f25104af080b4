"""Pure helpers of the benchmark: figures from repeated runs, pyinfra's and wrk's output read as numbers."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

# pyinfra -vv prints every command it runs on the host (facts and operations,
# and `docker cp` for uploads on the docker connector) as "[host] >>> command";
# -v prints "[host] Loaded fact NAME" for each fact it read.
_COMMAND = re.compile(r"^\[[^\]]+\] >>> ", re.M)
_FACT = re.compile(r"^\s*\[[^\]]+\] Loaded fact ", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def count_commands(output: str) -> int:
    """Commands pyinfra executed on the host, from a ``-vv`` run's output."""
    return len(_COMMAND.findall(_ANSI.sub("", output)))


def count_facts(output: str) -> int:
    """Facts pyinfra read from the host, from a ``-v`` (or ``-vv``) run's output."""
    return len(_FACT.findall(_ANSI.sub("", output)))


@dataclass
class Figure:
    """One measured quantity: every run's value, reported as median with min and max, and the load average each run began at."""

    runs: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)

    def add(self, value: float, load: float | None = None) -> None:
        self.runs.append(value)
        if load is not None:
            self.loads.append(load)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def as_dict(self) -> dict:
        if not self.runs:
            return {"runs": [], **self.extra}
        return {
            "median": round(self.median, 2),
            "min": round(min(self.runs), 2),
            "max": round(max(self.runs), 2),
            "runs": [round(r, 2) for r in self.runs],
            **({"load_1m": self.loads} if self.loads else {}),
            **self.extra,
        }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded, or None when either is missing."""
    if a is None or not b:
        return None
    return round(a / b, 3)


def slope(points: dict[int, float]) -> float | None:
    """Least-squares seconds per app from {apps: seconds}."""
    if len(points) < 2:
        return None
    xs, ys = list(points), list(points.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 3) if den else None


# ----------------------------------------------------------------------- wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m[1]) * _UNITS_MS[m[2]]


def parse_wrk(output: str) -> dict:
    """Requests/s, p50/p99 latency (ms) and errors from ``wrk --latency`` output.

    Errors are socket errors (connect, read, write, timeout) plus non-2xx/3xx answers.
    """
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    latency = {m[1]: _ms(m[2]) for m in re.finditer(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.M)}
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx[1])
    requests = re.search(r"^\s*(\d+) requests in", output, re.M)
    return {
        "rps": float(rps[1]),
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "errors": errors,
        "requests": int(requests[1]) if requests else None,
    }


# ------------------------------------------------------------------- ansible

_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def parse_recap(output: str) -> dict[str, int]:
    """ansible-playbook's PLAY RECAP line for the (one) host: ok, changed, unreachable, failed, skipped."""
    recaps = list(_RECAP.finditer(_ANSI.sub("", output)))
    if not recaps:
        raise ValueError(f"no PLAY RECAP in ansible-playbook output:\n{output[-3000:]}")
    m = recaps[-1]
    return {k: int(v) for k, v in m.groupdict().items() if k != "host"}
