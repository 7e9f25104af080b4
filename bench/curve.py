"""The cost curve as a picture: ``python -m bench.curve`` draws docs/cost-curve.png from bench/results*.json.

Two panels against the number of apps: the no-change re-run (seconds, and remote
commands on a second axis) and the first deploy (seconds), one line per distro that
``make bench BENCH=scaling`` measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "cost-curve.png"


def curves() -> dict[str, dict]:
    """{distro: results} for every results file holding a cost curve."""
    found = {}
    for path in sorted(HERE.glob("results*.json")):
        r = json.loads(path.read_text())
        if r.get("rerun_by_apps_detail"):
            distro = path.stem.removeprefix("results-") if path.stem != "results" else "ubuntu2404"
            found[distro] = r
    return found


def draw(found: dict[str, dict], out: Path = OUT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rerun, first) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    commands = rerun.twinx()
    for (distro, r), colour in zip(found.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=False):
        apps = sorted(int(n) for n in r["rerun_by_apps_detail"])
        detail = r["rerun_by_apps_detail"]
        rerun.plot(apps, [detail[str(n)]["median"] for n in apps], "o-", color=colour, label=f"{distro}: seconds")
        commands.plot(apps, [detail[str(n)]["commands"] for n in apps], "s--", color=colour, alpha=0.6, label=f"{distro}: commands")
        firsts = r.get("first_deploy_by_apps_detail") or {}
        if firsts:
            shown = sorted(int(n) for n in firsts)
            first.plot(shown, [firsts[str(n)]["median"] for n in shown], "o-", color=colour, label=distro)
    rerun.set_title("No-change re-run (docker connector)")
    rerun.set_xlabel("apps")
    rerun.set_ylabel("seconds (solid)")
    commands.set_ylabel("remote commands (dashed)")
    rerun.set_ylim(bottom=0)
    commands.set_ylim(bottom=0)
    first.set_title("First deploy (SSH, fresh host)")
    first.set_xlabel("apps")
    first.set_ylabel("seconds")
    first.set_ylim(bottom=0)
    lines = rerun.get_legend_handles_labels()[0] + commands.get_legend_handles_labels()[0]
    rerun.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    if first.lines:
        first.legend(fontsize=8, loc="upper left")
    loads = sorted({load for r in found.values() for f in r["rerun_by_apps_detail"].values() for load in f.get("load_1m", [])})
    if loads:
        fig.text(0.01, 0.01, f"2-core shared machine, 1-min load average {loads[0]}-{loads[-1]} during the runs", fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def main() -> int:
    found = curves()
    if not found:
        print("no cost curve in bench/results*.json yet: make bench BENCH=scaling", file=sys.stderr)
        return 1
    print(f"drawn: {draw(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
