"""Print and plot an AZR run's self-play metrics from verl's ``file`` logger output.

``python -m verl_selfplay.azr.report METRICS.jsonl [--png azr_curves.png]`` prints one row per training step with,
for each task type, the proposals' valid rate, the learnability (mean proposer reward of valid proposals), the solver
accuracy and the buffer size (``azr/{type}/...``), plus validation solver accuracy on the fixed held-out tasks; the
PNG has one panel for each of those families, a line per task type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verl_selfplay.azr.config import TASKS
from verl_selfplay.azr.prompts import DATA_SOURCES
from verl_selfplay.report import read_metrics, table

SHORT = {"deduction": "ded", "abduction": "abd", "induction": "ind"}
FAMILIES: tuple[tuple[str, str], ...] = (
    ("valid rate of proposals", "valid_rate"),
    ("learnability (proposer reward, valid)", "learnability"),
    ("solver accuracy (train)", "solver_acc"),
    ("buffer size", "buffer_size"),
)


def columns() -> tuple[tuple[str, str], ...]:
    """(label, metric key) of the per-step table."""
    cols = []
    for _, name in FAMILIES:
        cols += [(f"{SHORT[t]}_{name.split('_')[0]}", f"azr/{t}/{name}") for t in TASKS]
    cols += [(f"val_{SHORT[t]}", f"val-core/{DATA_SOURCES[t]}/acc/mean@1") for t in TASKS]
    return (*cols, ("step_s", "timing_s/step"), ("sandbox_s", "azr/sandbox_s"))


def plot(metrics: list[dict[str, Any]], png: str | Path) -> bool:
    """One panel per family of :data:`FAMILIES`, a line per task type; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(FAMILIES), figsize=(4 * len(FAMILIES), 3.4))
    for ax, (title, name) in zip(axes, FAMILIES, strict=True):
        for task_type in TASKS:
            key = f"azr/{task_type}/{name}"
            pts = [(m["step"], m[key]) for m in metrics if key in m and m[key] == m[key]]  # NaN-free
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=task_type)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Absolute Zero self-play")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.azr.report", description=__doc__.split("\n")[0])
    parser.add_argument("metrics", help="the JSONL written by verl's file logger (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--png", help="also draw the curves into this PNG")
    args = parser.parse_args(argv)
    warnings: list[str] = []
    metrics = read_metrics(args.metrics, warnings)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not metrics:
        print(f"no metrics in {args.metrics}", file=sys.stderr)
        return 1
    print(table(metrics, columns()))
    if args.png and plot(metrics, args.png):
        print(f"\ncurves: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
