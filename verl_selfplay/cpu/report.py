"""The CPU jobs' console summary: a per-step table of a verl run's metrics and the step-time breakdown, with the
``hf`` rollout's own generation times.

``python -m verl_selfplay.cpu.report METRICS.jsonl [--log RUN.log] [--out DIR] [--png curve.png]`` prints one row per
training step (reward, validation accuracy, grad norm, rollout/actor log-prob agreement) and the step-time
breakdown. ``--out`` also writes the training report of any run (:mod:`verl_selfplay.report`, whose reader and
table this module uses); ``--png`` draws only the accuracy curves (kept for old command lines).

verl's ``timing_s/gen`` is the wait for a full batch in the replay buffer, which polls TransferQueue every
``poll_interval`` seconds (2 s in verl's own buffer), so it is quantised; the ``[hf-rollout]`` lines give
the time the server actually spent in ``generate`` for each weight version.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from verl_selfplay import report as _report
from verl_selfplay.report import load_run, read_metrics, write_report

__all__ = ["breakdown", "main", "plot", "read_metrics", "rollout_stats", "table"]

# prefix of the line the hf rollout server prints per weight version (verl_selfplay.cpu.hf_rollout)
LOG_PREFIX = "[hf-rollout]"

# (label, verl metric key) of the step-time breakdown
PHASES: tuple[tuple[str, str], ...] = (
    ("generation (verl: wait for batch)", "timing_s/gen"),
    ("old log-prob", "timing_s/old_log_prob"),
    ("reference log-prob", "timing_s/ref"),
    ("advantage", "timing_s/adv"),
    ("actor update", "timing_s/update_actor"),
    ("weight sync", "timing_s/update_weights"),
    ("checkpoint", "timing_s/save_checkpoint"),
    ("validation", "timing_s/testing"),
    ("whole step", "timing_s/step"),
)

COLUMNS: tuple[tuple[str, str], ...] = (
    ("acc_gen", "training/group_filter/group_metric_mean/generated"),
    ("score", "critic/score/mean"),
    ("val_acc", "val-core/math/acc/mean@1"),
    ("grad_norm", "actor/grad_norm"),
    ("lp_diff_max", "training/rollout_probs_diff_max"),
    ("kept/gen", "training/group_filter/keep_rate"),
    ("step_s", "timing_s/step"),
)

_HF_LINE = re.compile(
    re.escape(LOG_PREFIX) + r" version=(\d+) batches=(\d+) requests=(\d+) tokens=(\d+) generate_s=([0-9.]+)"
)


def rollout_stats(log: str) -> list[dict[str, float]]:
    """The ``[hf-rollout]`` lines of a run's log: per weight version, batches, requests, tokens, generate_s.

    Weight version ``v`` is the policy after ``v`` updates; it generates training step ``v + 1``.

    >>> rollout_stats("x [hf-rollout] version=1 batches=2 requests=32 tokens=350 generate_s=0.5000 y")
    [{'version': 1, 'batches': 2, 'requests': 32, 'tokens': 350, 'generate_s': 0.5}]
    """
    return [
        {"version": int(s), "batches": int(b), "requests": int(r), "tokens": int(t), "generate_s": float(g)}
        for s, b, r, t, g in _HF_LINE.findall(log)
    ]


def breakdown(metrics: list[dict[str, Any]], log: str = "", skip_first: bool = True) -> dict[str, float]:
    """Median seconds per phase over the training steps (the first step, with its warm-up, left out if others exist)."""
    steps = [m for m in metrics if "timing_s/step" in m]
    if skip_first and len(steps) > 1:
        steps = steps[1:]
    out: dict[str, float] = {}
    for label, key in PHASES:
        values = [m[key] for m in steps if key in m]
        if values:
            out[label] = statistics.median(values)
    wanted = {int(m["step"]) for m in steps}
    gen = [r["generate_s"] for r in rollout_stats(log) if r["version"] + 1 in wanted]
    if gen:
        out["generation (hf server, in generate)"] = statistics.median(gen)
    return out


def table(metrics: list[dict[str, Any]], columns: tuple[tuple[str, str], ...] = COLUMNS) -> str:
    """One row per step with the ``columns`` (label, metric key) that the run logged (:func:`verl_selfplay.report.table`)."""
    return _report.table(metrics, columns)


def plot(metrics: list[dict[str, Any]], png: str | Path) -> bool:
    """Training accuracy (all generated groups) and validation accuracy per step as a PNG; ``False`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    curves = (
        ("train accuracy, all generated groups", "training/group_filter/group_metric_mean/generated"),
        ("val accuracy (greedy)", "val-core/math/acc/mean@1"),
    )
    for label, key in curves:
        pts = [(m["step"], m[key]) for m in metrics if key in m]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
    ax.set_xlabel("step")
    ax.set_ylim(0, 1)
    ax.set_title("tiny model, GRPO on CPU")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.cpu.report", description=__doc__.split("\n")[0])
    parser.add_argument("metrics", help="the JSONL written by verl's file logger (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--log", help="the run's console log, for the [hf-rollout] generation times")
    parser.add_argument("--out", help="also write the training report (report.md and PNGs) into this folder")
    parser.add_argument("--png", help="also plot reward and accuracy per step into this PNG")
    args = parser.parse_args(argv)
    run = load_run(args.metrics)
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    metrics = run.metrics
    if not metrics:
        print(f"no metrics in {args.metrics}", file=sys.stderr)
        return 1
    log = Path(args.log).read_text(errors="replace") if args.log and Path(args.log).is_file() else ""
    print(table(metrics, COLUMNS))
    print("\nstep time, median over steps after the first (s):")
    for label, seconds in breakdown(metrics, log).items():
        print(f"  {label:<38} {seconds:8.3f}")
    if args.png and plot(metrics, args.png):
        print(f"\ncurve: {args.png}")
    if args.out:
        report = write_report(run, args.out)
        print(f"\nreport: {report.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
