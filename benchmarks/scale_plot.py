"""Draw scale_bench.py's runs: time to all Ready against N, for the operator and the limit.

Reads the ``--json`` summaries of several ``scale_bench.py`` runs (one per N) and draws two
panels into one PNG:

1. **Time to all Ready vs N**: the operator's ``ready_s`` and the limit's ``total_s`` of each run.
   A run made with ``--skip-limit`` has no limit of its own: its limit is the least-squares line
   through the runs that have one (at least two), drawn hollow and labelled *extrapolated*.
2. **Ready over time**: each run's timeline (endpoints Ready against seconds from the first
   create), the operator solid and the limit dashed, as a fraction of N, so a wave at the end
   shows as a step and a steady rate as a slope.

It prints a table of the same figures (ratio = operator / limit), then them as one JSON object::

    .venv/bin/python benchmarks/scale_plot.py /tmp/s300.json /tmp/s1000.json /tmp/s3000.json \\
        --png docs/scale-ready-vs-n.png
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any


def load(paths: list[pathlib.Path]) -> list[dict[str, Any]]:
    runs = [json.loads(path.read_text()) for path in paths]
    return sorted(runs, key=lambda run: int(run["entries"]))


def limit_line(runs: list[dict[str, Any]]) -> tuple[float, float] | None:
    """Slope and intercept of the limit's time to Ready against N (least squares); None with
    fewer than two runs that measured it."""
    points = [(float(r["entries"]), float(r["limit"]["total_s"])) for r in runs if r.get("limit")]
    if len(points) < 2:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_t = sum(t for _, t in points) / len(points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / spread
    return slope, mean_t - slope * mean_n


def rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: N, the operator's and the limit's time to all Ready, whether the limit
    was extrapolated, and the ratio."""
    line = limit_line(runs)
    table = []
    for run in runs:
        n = int(run["entries"])
        limit = run.get("limit")
        if limit:
            limit_s, extrapolated = float(limit["total_s"]), False
        elif line is not None:
            limit_s, extrapolated = line[0] * n + line[1], True
        else:
            limit_s, extrapolated = None, True
        operator_s = float(run["operator"]["ready_s"])
        ratio = operator_s / limit_s if limit_s else None
        table.append({"n": n, "operator_s": operator_s, "limit_s": limit_s, "extrapolated": extrapolated,
                      "ratio": ratio, "rss_peak_mib": run["operator"].get("rss_peak_mib"),
                      "load": run.get("load_avg_start", [None])[0]})  # fmt: skip
    return table


def draw(runs: list[dict[str, Any]], png: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    table = rows(runs)
    fig, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    n = [row["n"] for row in table]
    left.plot(n, [row["operator_s"] for row in table], "o-", label="operator")
    measured = [row for row in table if row["limit_s"] is not None and not row["extrapolated"]]
    guessed = [row for row in table if row["limit_s"] is not None and row["extrapolated"]]
    left.plot(
        [r["n"] for r in measured], [r["limit_s"] for r in measured], "s--", label="limit (no operator)"
    )
    if guessed:
        left.plot([r["n"] for r in guessed], [r["limit_s"] for r in guessed], "s", fillstyle="none",
                  color="tab:orange", label="limit, extrapolated")  # fmt: skip
    for row in table:
        if row["ratio"] is not None:
            left.annotate(f"{row['ratio']:.2f}x", (row["n"], row["operator_s"]), textcoords="offset points",
                          xytext=(4, 6), fontsize="small")  # fmt: skip
    left.set_xlabel("ModelEntries + ModelEndpoints (N each)")
    left.set_ylabel("seconds to all Ready")
    left.set_title("time to all Ready vs N (ratio: operator / limit)", fontsize="medium")
    left.legend(loc="upper left")
    for run in runs:
        size = int(run["entries"])
        line = right.plot(*_fraction(run["operator"]["timeline"], size), label=f"operator, N={size}")
        if run.get("limit"):
            # the limit's timeline counts from its children's first create: its CRs came first
            offset = float(run["limit"].get("cr_create_s") or 0)
            right.plot(*_fraction(run["limit"]["timeline"], size, offset), "--", color=line[0].get_color(),
                       label=f"limit, N={size}")  # fmt: skip
    right.set_xlabel("seconds from the first create")
    right.set_ylabel("fraction of endpoints Ready")
    right.set_title("Ready over time", fontsize="medium")
    right.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def _fraction(timeline: list[list[float]], n: int, offset: float = 0.0) -> tuple[list[float], list[float]]:
    return [t + offset for t, _ in timeline], [ready / n for _, ready in timeline]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=pathlib.Path, nargs="+", help="scale_bench.py --json files")
    parser.add_argument("--png", type=pathlib.Path, default=None)
    args = parser.parse_args()
    runs = load(args.runs)
    print(f"{'N':>6} {'operator s':>11} {'limit s':>9} {'ratio':>7} {'peak RSS MiB':>13} {'load':>5}")
    for row in rows(runs):
        limit = "-" if row["limit_s"] is None else f"{row['limit_s']:.1f}{'*' if row['extrapolated'] else ''}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        rss, average = row["rss_peak_mib"] or 0, row["load"] or 0
        print(f"{row['n']:>6} {row['operator_s']:>11.1f} {limit:>9} {ratio:>7} {rss:>13.1f} {average:>5.1f}")
    print("(* extrapolated: the least-squares line through the runs that measured the limit)")
    if args.png is not None:
        draw(runs, args.png)
        print(f"wrote {args.png}")
    print(json.dumps({"runs": rows(runs), "png": str(args.png) if args.png else None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
