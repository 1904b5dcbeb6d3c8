"""Print and plot a math self-play run's metrics (``azr.domain=math``) from verl's ``file`` logger output.

``python -m verl_selfplay.azr.math_report METRICS.jsonl [--png selfplay_math_curves.png]`` prints one row per
training step of the ``selfplay_math/*`` metrics (:meth:`verl_selfplay.azr.domains.math.MathDomain.harvest`): the
proposals' valid rate, learnability (mean proposer reward of valid proposals), label majority share, proposals added,
buffer size and labelled problems, diversity, novelty, label accuracy on held-out gold problems, solver accuracy
against the labels, the share of informative solver groups and the groups the accuracy filter dropped, re-labels and changed labels, the rejections per
reason, and the validation accuracy on gold answers (``val-core/math/acc/mean@1``). The PNG has one panel per family,
the rejection reasons stacked, and the solve-rate histogram of each step's valid proposals.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verl_selfplay.cpu.report import read_metrics, table

PREFIX = "selfplay_math"
VAL_ACC = "val-core/math/acc/mean@1"
REJECTED = f"{PREFIX}/rejected/"
HIST = f"{PREFIX}/solve_rate_hist/"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("valid", f"{PREFIX}/valid_rate"),
    ("learn", f"{PREFIX}/learnability"),
    ("maj_s", f"{PREFIX}/label_majority_share"),
    ("added", f"{PREFIX}/added"),
    ("buffer", f"{PREFIX}/buffer_size"),
    ("labelled", f"{PREFIX}/buffer_labelled"),
    ("div", f"{PREFIX}/diversity"),
    ("novelty", f"{PREFIX}/novelty"),
    ("lab_gold", f"{PREFIX}/label_acc_on_gold"),
    ("solv_acc", f"{PREFIX}/solver_acc"),
    ("inform", f"{PREFIX}/solver_groups_informative"),
    ("dropped", f"{PREFIX}/solver_groups_dropped"),
    ("relab", f"{PREFIX}/relabelled"),
    ("changed", f"{PREFIX}/label_changed"),
    ("sim_pen", f"{PREFIX}/similarity_penalty"),
    ("val_acc", VAL_ACC),
    ("step_s", "timing_s/step"),
)

# (panel title, [(line label, metric key)]) of the line panels
PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("valid rate of proposals", (("valid", f"{PREFIX}/valid_rate"),)),
    ("learnability (proposer reward, valid)", (("learnability", f"{PREFIX}/learnability"),)),
    ("label majority share s", (("proposals", f"{PREFIX}/label_majority_share"),)),
    ("buffer diversity / novelty", (("diversity", f"{PREFIX}/diversity"), ("novelty", f"{PREFIX}/novelty"))),
    (
        "accuracy",
        (
            ("labels on gold (probes)", f"{PREFIX}/label_acc_on_gold"),
            ("solver vs labels", f"{PREFIX}/solver_acc"),
            ("val on gold", VAL_ACC),
        ),
    ),
    ("buffer", (("size", f"{PREFIX}/buffer_size"), ("labelled", f"{PREFIX}/buffer_labelled"))),
)


def _sorted_suffixes(metrics: list[dict[str, Any]], prefix: str) -> list[str]:
    return sorted({k[len(prefix) :] for m in metrics for k in m if k.startswith(prefix)})


def rejection_reasons(metrics: list[dict[str, Any]]) -> list[str]:
    """The rejection reasons any step logged (``selfplay_math/rejected/<reason>``), sorted.

    >>> steps = [{"step": 1, f"{REJECTED}copy": 1.0}, {"step": 2, f"{REJECTED}format": 2.0, f"{REJECTED}copy": 1.0}]
    >>> rejection_reasons(steps)
    ['copy', 'format']
    """
    return _sorted_suffixes(metrics, REJECTED)


def hist_bins(metrics: list[dict[str, Any]]) -> list[str]:
    """The solve-rate histogram bins any step logged (``selfplay_math/solve_rate_hist/<lo>-<hi>``), low to high.

    >>> hist_bins([{"step": 1, f"{HIST}0.8-1.0": 0.0, f"{HIST}0.2-0.4": 0.0, f"{HIST}0.0-0.2": 1.0}])
    ['0.0-0.2', '0.2-0.4', '0.8-1.0']
    """
    return sorted(_sorted_suffixes(metrics, HIST), key=lambda b: float(b.split("-")[0]))


def columns(metrics: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(label, metric key) of the per-step table: :data:`COLUMNS`, then one ``rej_<reason>`` column per rejection
    reason and one ``s<lo>-<hi>`` column per histogram bin. A step that logged no rejection of a reason shows 0
    (verl logs only the reasons that occurred)."""
    return (
        *COLUMNS,
        *((f"rej_{r}", REJECTED + r) for r in rejection_reasons(metrics)),
        *((f"s{b}", HIST + b) for b in hist_bins(metrics)),
    )


def with_zero_rejections(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``metrics`` where every training step (one with ``selfplay_math/valid_rate``) has every rejection reason,
    0 when it logged none."""
    reasons = rejection_reasons(metrics)
    out = []
    for m in metrics:
        if f"{PREFIX}/valid_rate" in m:
            m = {**{REJECTED + r: 0.0 for r in reasons}, **m}
        out.append(m)
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value


def plot(metrics: list[dict[str, Any]], png: str | Path) -> bool:
    """The curves of :data:`PANELS`, the rejections per reason (stacked bars) and the solve-rate histogram per step
    (stacked bars) as a PNG; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    metrics = with_zero_rejections(metrics)
    fig, axes = plt.subplots(2, 4, figsize=(17, 7))
    flat = list(axes.flat)
    for ax, (title, lines) in zip(flat, PANELS, strict=False):
        for label, key in lines:
            pts = [(m["step"], m[key]) for m in metrics if _finite(m.get(key))]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        ax.set_title(title, fontsize=10)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    steps = [m for m in metrics if f"{PREFIX}/valid_rate" in m]
    xs = [m["step"] for m in steps]
    for ax, title, prefix, names in (
        (flat[6], "rejected proposals per reason", REJECTED, rejection_reasons(metrics)),
        (flat[7], "solve rate s of valid proposals", HIST, hist_bins(metrics)),
    ):
        bottom = [0.0] * len(steps)
        for name in names:
            heights = [float(m.get(prefix + name, 0.0)) if _finite(m.get(prefix + name)) else 0.0 for m in steps]
            ax.bar(xs, heights, bottom=bottom, label=name)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_title(title, fontsize=10)
        if names:
            ax.legend(fontsize=7)
    for ax in flat:
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle("math self-play")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.azr.math_report", description=__doc__.split("\n")[0])
    parser.add_argument("metrics", help="the JSONL written by verl's file logger (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--png", help="also draw the curves into this PNG")
    args = parser.parse_args(argv)
    metrics = read_metrics(args.metrics)
    if not metrics:
        print(f"no metrics in {args.metrics}", file=sys.stderr)
        return 1
    print(table(with_zero_rejections(metrics), columns(metrics)))
    if args.png and plot(metrics, args.png):
        print(f"\ncurves: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
