"""A training report for any verl run: one PNG per metric family and a one-page ``report.md`` that links them.

``python -m verl_selfplay.report RUN_DIR_OR_METRICS_JSONL --out DIR [--tensorboard TB_DIR]`` reads verl's ``file``
logger output (``VERL_FILE_LOGGER_PATH``; a run folder is searched for ``metrics.jsonl``, then for any file-logger
JSONL, then for TensorBoard event files) and, when given, a TensorBoard log folder (verl's ``tensorboard`` logger,
``TENSORBOARD_DIR``). It draws one PNG per family of :data:`FAMILIES` that the run logged: reward and accuracy (train
and validation), response length, entropy, the group filter's keep rate and rejection reasons, majority vote, PCL's
predicted versus actual pass rate, AZR and math self-play curves, reasoning behaviours and step time. ``report.md``
shows the key numbers at the first, best and last step, links the PNGs, lists the families the run did not log, and
repeats every warning.

Bad input never raises: a malformed or truncated line is skipped with a warning naming ``file:line``, and the report
covers what could be read. The exit code is 1 only when no metric at all could be read (``report.md`` still says why).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

Metrics = list[dict[str, Any]]
MAX_LINE_WARNINGS = 10  # unreadable lines named one by one per file; the rest are counted


@dataclass(frozen=True)
class Series:
    """Metric keys to draw as lines: ``pattern`` may hold ``*`` wildcards (matching ``/`` too); ``label`` may use
    ``{0}``, ``{1}``, ... for the text each wildcard matched; ``key=False`` keeps them out of the key numbers."""

    pattern: str
    label: str
    key: bool = True


@dataclass(frozen=True)
class Panel:
    """One plot of a family. ``better`` ("max" / "min") says which value is the best one in the key numbers;
    ``key`` puts the panel's lines into the key-numbers table; ``ylim`` fixes the y range (shares: 0 to 1)."""

    title: str
    series: tuple[Series, ...]
    better: str | None = None
    key: bool = True
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class Family:
    """A group of panels drawn into ``{name}.png``; ``hint`` names its metrics in the list of absent families."""

    name: str
    title: str
    hint: str
    panels: tuple[Panel, ...]


def _s(pattern: str, label: str, key: bool = True) -> Series:
    return Series(pattern, label, key)


FAMILIES: tuple[Family, ...] = (
    Family(
        "reward",
        "Reward and accuracy",
        "critic/score/*, val-core/*",
        (
            Panel(
                "train reward",
                (_s("critic/score/mean", "score (mean)"), _s("critic/rewards/mean", "reward incl. KL (mean)")),
                better="max",
            ),
            Panel(
                "train accuracy",
                (
                    _s("training/group_filter/group_metric_mean/generated", "acc, all generated groups"),
                    _s("training/group_filter/group_metric_mean/kept", "acc, kept groups"),
                ),
                better="max",
            ),
            Panel(
                "validation",
                (
                    _s("val-core/*/mean@*", "{0} mean@{1}"),
                    _s("val-core/*/best@*/mean", "{0} best@{1}"),
                    _s("val-core/*/maj@*/mean", "{0} maj@{1}"),
                ),
                better="max",
            ),
        ),
    ),
    Family(
        "length",
        "Response length",
        "response_length/*",
        (
            Panel(
                "response length (tokens)",
                (
                    _s("response_length/mean", "mean"),
                    _s("response_length/max", "max", key=False),
                    _s("response_length/min", "min", key=False),
                ),
            ),
            Panel("clipped at max length (share)", (_s("response_length/clip_ratio", "clip ratio"),), better="min"),
        ),
    ),
    Family(
        "entropy",
        "Entropy",
        "actor/entropy",
        (
            Panel("policy entropy", (_s("actor/entropy", "entropy"),)),
            Panel("gradient norm", (_s("actor/grad_norm", "grad norm"),), key=False),
        ),
    ),
    Family(
        "group_filter",
        "Group filter",
        "training/group_filter/*",
        (
            Panel("keep rate (kept / generated groups)", (_s("training/group_filter/keep_rate", "keep rate"),)),
            Panel(
                "rejected groups by reason",
                (_s("training/group_filter/groups_rejected/*", "{0}"),),
                key=False,
            ),
            Panel("masked samples by filter", (_s("training/group_filter/samples_masked/*", "{0}"),), key=False),
            Panel("generation rounds", (_s("training/group_filter/gen_rounds", "rounds"),), key=False),
        ),
    ),
    Family(
        "vote",
        "Majority vote (TTRL)",
        "training/vote/*",
        (
            Panel(
                "vote",
                (
                    _s("training/vote/majority_ratio", "majority ratio"),
                    _s("training/vote/label_agreement", "label = gold"),
                    _s("training/vote/true_acc", "acc vs gold"),
                    _s("training/vote/pseudo_acc", "acc vs pseudo-label"),
                ),
            ),
        ),
    ),
    Family(
        "pcl",
        "Prompt Curriculum Learning",
        "pcl/*",
        (
            Panel(
                "pass rate: predicted vs actual",
                (
                    _s("pcl/predicted_reward/mean", "predicted"),
                    _s("pcl/actual_reward/mean", "actual"),
                    _s("pcl/candidate_predicted/mean", "all candidates, predicted", key=False),
                ),
            ),
            Panel(
                "value model error",
                (_s("pcl/value_mse", "MSE"), _s("pcl/calibration_error", "calibration error")),
                better="min",
            ),
            Panel(
                "effective ratio (non-zero advantage)", (_s("pcl/effective_ratio", "effective ratio"),), better="max"
            ),
        ),
    ),
    Family(
        "azr",
        "Absolute Zero self-play",
        "azr/*",
        (
            Panel("valid rate of proposals", (_s("azr/*/valid_rate", "{0}"),)),
            Panel("learnability (proposer reward, valid)", (_s("azr/*/learnability", "{0}"),)),
            Panel("solver accuracy (train)", (_s("azr/*/solver_acc", "{0}"),), better="max"),
            Panel("buffer size", (_s("azr/*/buffer_size", "{0}"),), key=False),
            Panel("rejected proposals by reason", (_s("azr/*/rejected/*", "{0}: {1}"),), key=False),
        ),
    ),
    Family(
        "selfplay_math",
        "Math self-play",
        "selfplay_math/*",
        (
            Panel(
                "proposals",
                (_s("selfplay_math/valid_rate", "valid rate"), _s("selfplay_math/learnability", "learnability")),
            ),
            Panel(
                "labels",
                (
                    _s("selfplay_math/label_majority_share", "majority share"),
                    _s("selfplay_math/label_acc_on_gold", "label acc on gold"),
                ),
            ),
            Panel("buffer size", (_s("selfplay_math/buffer_size", "buffer size"),)),
            Panel(
                "diversity and novelty",
                (_s("selfplay_math/diversity", "diversity"), _s("selfplay_math/novelty", "novelty")),
            ),
            Panel("rejected proposals by reason", (_s("selfplay_math/rejected/*", "{0}"),), key=False),
        ),
    ),
    Family(
        "behaviours",
        "Reasoning behaviours",
        "behaviour/*",
        (
            Panel("share of responses showing it", (_s("behaviour/*/rate", "{0}"),), ylim=(-0.02, 1.02)),
            Panel("reward gap (with minus without)", (_s("behaviour/*/reward_gap", "{0}"),)),
        ),
    ),
    Family(
        "timing",
        "Step time",
        "timing_s/*",
        (
            Panel(
                "seconds per step",
                (
                    _s("timing_s/step", "whole step"),
                    _s("timing_s/gen", "generation"),
                    _s("timing_s/update_actor", "actor update"),
                ),
                key=False,
            ),
        ),
    ),
)


@dataclass
class Run:
    """What could be read of one run: one dict of metrics per step (``step`` included), sorted by step."""

    metrics: Metrics = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _number(value: Any) -> int | float | None:
    """A metric value as a number: ``None`` (verl's file logger writes NaN as ``null``) is NaN, a bool 0.0 or 1.0;
    text is not a metric."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        return value if abs(value) < 1 << 63 else (math.inf if value > 0 else -math.inf)  # isfinite overflows
    if isinstance(value, float):
        return value
    return None


def read_metrics(path: str | Path, warnings: list[str] | None = None) -> Metrics:
    """verl's ``file`` logger JSONL as one dict per step (lines of the same step merged), step-ordered.

    A line that is not a ``{"step": int, "data": {...}}`` object is skipped and named in ``warnings``; a missing
    file reads as no metrics. NaN (written as ``null``) reads as ``nan``; non-numeric values are dropped.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "m.jsonl")
    >>> _ = open(p, "w").write('{"step": 1, "data": {"a": 1}}\\n{"step": 1, "data": {"b": 2}}\\n{"step": 2, "da')
    >>> w = []
    >>> read_metrics(p, w)
    [{'step': 1, 'a': 1, 'b': 2}]
    >>> w  # doctest: +ELLIPSIS
    ['...m.jsonl:3: not a JSON line (truncated?); skipped']
    """
    warnings = [] if warnings is None else warnings
    path = Path(path)
    by_step: dict[int, dict[str, Any]] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        warnings.append(f"{path}: cannot read ({e.strerror or e})")
        return []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError:
            bad.append(f"{where}: not a JSON line (truncated?); skipped")
            continue
        step = row.get("step") if isinstance(row, dict) else None
        data = row.get("data") if isinstance(row, dict) else None
        if (
            not isinstance(step, int | float)
            or isinstance(step, bool)
            or not math.isfinite(step)
            or not isinstance(data, dict)
        ):
            bad.append(f'{where}: not a verl file-logger line ({{"step": N, "data": {{...}}}}); skipped')
            continue
        for key, value in data.items():
            number_value = _number(value)
            if number_value is not None and key != "step":
                by_step.setdefault(int(step), {"step": int(step)})[str(key)] = number_value
    warnings += bad[:MAX_LINE_WARNINGS]
    if len(bad) > MAX_LINE_WARNINGS:
        warnings.append(f"{path}: {len(bad) - MAX_LINE_WARNINGS} more unreadable lines skipped")
    return [by_step[k] for k in sorted(by_step)]


def read_tensorboard(folder: str | Path, warnings: list[str] | None = None) -> Metrics:
    """The scalars of every TensorBoard event file under ``folder``, one dict per step; needs ``tensorboard``
    installed (a warning otherwise)."""
    warnings = [] if warnings is None else warnings
    folder = Path(folder)
    dirs = sorted({p.parent for p in folder.rglob("events.out.tfevents.*")}) if folder.is_dir() else []
    if not dirs:
        warnings.append(f"{folder}: no TensorBoard event files")
        return []
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        warnings.append(f"{folder}: TensorBoard logs need the tensorboard package (pip install tensorboard); skipped")
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for d in dirs:
        try:
            acc = EventAccumulator(str(d), size_guidance={"scalars": 0})
            acc.Reload()
            for tag in acc.Tags().get("scalars", []):
                for event in acc.Scalars(tag):
                    by_step.setdefault(int(event.step), {"step": int(event.step)})[tag] = float(event.value)
        except Exception as e:  # a corrupt event file: report what the others hold
            warnings.append(f"{d}: unreadable TensorBoard events ({type(e).__name__}: {e}); skipped")
    return [by_step[k] for k in sorted(by_step)]


def _is_file_logger_jsonl(path: Path) -> bool:
    try:
        with path.open(errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
        row = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(row, dict) and "step" in row and isinstance(row.get("data"), dict)


def _merge(into: Metrics, other: Metrics) -> Metrics:
    """``into`` with the metrics of ``other`` added where ``into`` lacks them, by step."""
    by_step = {m["step"]: dict(m) for m in into}
    for m in other:
        row = by_step.setdefault(m["step"], {"step": m["step"]})
        for key, value in m.items():
            row.setdefault(key, value)
    return [by_step[k] for k in sorted(by_step)]


def load_run(path: str | Path, tensorboard: str | Path | None = None) -> Run:
    """Read a run: ``path`` is a metrics JSONL or a run folder (see the module docstring); ``tensorboard`` an
    optional TensorBoard log folder whose scalars fill in what the JSONL lacks."""
    run = Run()
    path = Path(path)
    if path.is_dir():
        found = path / "metrics.jsonl"
        if not found.is_file():
            candidates = sorted(p for p in path.rglob("*.jsonl") if _is_file_logger_jsonl(p))
            found = max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None
            if len(candidates) > 1:
                run.warnings.append(f"{path}: {len(candidates)} metrics files; read the newest, {found}")
        if found is not None:
            run.metrics = read_metrics(found, run.warnings)
            run.sources.append(str(found))
        if tensorboard is None and any(path.rglob("events.out.tfevents.*")):
            tensorboard = path
        if found is None and tensorboard is None:
            run.warnings.append(f"{path}: no metrics.jsonl, file-logger JSONL or TensorBoard events in this folder")
    elif path.exists():
        run.metrics = read_metrics(path, run.warnings)
        run.sources.append(str(path))
    else:
        run.warnings.append(f"{path}: no such file or folder")
    if tensorboard is not None:
        run.metrics = _merge(run.metrics, read_tensorboard(tensorboard, run.warnings))
        run.sources.append(f"{tensorboard} (TensorBoard)")
    return run


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + "(.*)".join(re.escape(p) for p in pattern.split("*")) + "$")


def series_of(panel: Panel, keys: Iterable[str], key_only: bool = False) -> list[tuple[str, str]]:
    """(label, metric key) of every line of ``panel`` among ``keys``, in the panel's order (``key_only``: only the
    lines that belong in the key numbers).

    >>> p = Panel("t", (_s("behaviour/*/rate", "{0}"),))
    >>> series_of(p, ["behaviour/verification/rate", "behaviour/backtracking/rate", "behaviour/x/reward_gap"])
    [('backtracking', 'behaviour/backtracking/rate'), ('verification', 'behaviour/verification/rate')]
    """
    keys = sorted(set(keys))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for s in panel.series:
        if key_only and not s.key:
            continue
        rx = _regex(s.pattern)
        for key in keys:
            m = rx.match(key) if fnmatchcase(key, s.pattern) else None
            if m and key not in seen and not key.endswith("/std"):
                seen.add(key)
                out.append((s.label.format(*m.groups()), key))
    return out


def points(metrics: Metrics, key: str) -> list[tuple[int, float]]:
    """(step, value) of ``key`` at every step where it is a finite number."""
    return [(m["step"], m[key]) for m in metrics if key in m and math.isfinite(m[key])]


def fmt(value: Any) -> str:
    """A metric value for tables: 3 decimals, ``-`` for missing.

    >>> fmt(0.123456), fmt(None), fmt(float("nan")), fmt(12), fmt(0.001234), fmt(1.0)
    ('0.123', '-', 'nan', '12', '0.00123', '1.000')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.3f}"
    return str(value)


def table(metrics: Metrics, columns: tuple[tuple[str, str], ...]) -> str:
    """One row per step with the ``columns`` (label, metric key) that the run logged."""
    cols = [(label, key) for label, key in columns if any(key in m for m in metrics)]
    header = ["step"] + [label for label, _ in cols]
    rows = [[str(m["step"])] + [fmt(m.get(key)) for _, key in cols] for m in metrics]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows])


@dataclass
class KeyNumber:
    """A metric at the run's first and last step it was logged, and at its best step (when the panel has one)."""

    family: str
    label: str
    key: str
    first: tuple[int, float]
    last: tuple[int, float]
    best: tuple[int, float] | None


def key_numbers(metrics: Metrics, families: tuple[Family, ...] = FAMILIES) -> list[KeyNumber]:
    """The key numbers of every logged line of the key panels of ``families``."""
    keys = {k for m in metrics for k in m if k != "step"}
    out = []
    for family in families:
        for panel in family.panels:
            if not panel.key:
                continue
            for label, key in series_of(panel, keys, key_only=True):
                pts = points(metrics, key)
                if not pts:
                    continue
                best = None
                if panel.better == "max":
                    best = max(pts, key=lambda p: p[1])
                elif panel.better == "min":
                    best = min(pts, key=lambda p: p[1])
                out.append(KeyNumber(family.title, label, key, pts[0], pts[-1], best))
    return out


def plot_family(metrics: Metrics, family: Family, png: str | Path) -> bool:
    """Draw the panels of ``family`` that have data into ``png``; ``False`` when none has (nothing is written)."""
    keys = {k for m in metrics for k in m if k != "step"}
    drawn = []
    for panel in family.panels:
        lines = [(label, pts) for label, key in series_of(panel, keys) if (pts := points(metrics, key))]
        if lines:
            drawn.append((panel, lines))
    if not drawn:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ncols = min(3, len(drawn))
    nrows = math.ceil(len(drawn) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (panel, lines) in zip(axes.flat, drawn, strict=False):
        for label, pts in lines:
            ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=label)
        ax.set_title(panel.title, fontsize=10)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.set_visible(False)
    fig.suptitle(family.title)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return True


@dataclass
class Report:
    """What :func:`write_report` wrote: the markdown file, the PNG of each drawn family, the absent families."""

    markdown: Path
    pngs: dict[str, Path]
    absent: list[str]
    warnings: list[str]


def _at(point: tuple[int, float] | None) -> str:
    return "-" if point is None else f"{fmt(point[1])} (step {point[0]})"


def write_report(run: Run, out: str | Path, title: str = "Training report") -> Report:
    """Write ``report.md`` and one PNG per logged family of :data:`FAMILIES` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    warnings = list(run.warnings)
    pngs: dict[str, Path] = {}
    absent: list[str] = []
    for family in FAMILIES:
        png = out / f"{family.name}.png"
        try:
            drawn = plot_family(run.metrics, family, png)
        except ImportError:
            warnings.append("matplotlib is not installed: no PNGs (pip install matplotlib)")
            break
        if drawn:
            pngs[family.name] = png
        else:
            png.unlink(missing_ok=True)  # a stale PNG of an earlier report of another run
            absent.append(family.name)
    steps = [m["step"] for m in run.metrics]
    lines = [f"# {title}", ""]
    if run.sources:
        lines.append("Read from " + ", ".join(f"`{s}`" for s in run.sources) + ".")
    if steps:
        lines.append(f"{len(steps)} steps logged, {steps[0]} to {steps[-1]}.")
    else:
        lines.append("**No metrics could be read**; see the warnings below.")
    numbers = key_numbers(run.metrics)
    if numbers:
        lines += ["", "## Key numbers", "", "| family | metric | first | best | last |", "|---|---|---|---|---|"]
        for n in numbers:
            lines.append(f"| {n.family} | {n.label} (`{n.key}`) | {_at(n.first)} | {_at(n.best)} | {_at(n.last)} |")
    for family in FAMILIES:
        if family.name in pngs:
            lines += ["", f"## {family.title}", "", f"![{family.title}]({family.name}.png)"]
    titles = {f.name: f for f in FAMILIES}
    if absent:
        lines += ["", "## Not logged in this run", ""]
        lines += [f"- {titles[name].title}: no `{titles[name].hint}` metrics" for name in absent]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    markdown = out / "report.md"
    markdown.write_text("\n".join(lines) + "\n")
    return Report(markdown, pngs, absent, warnings)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.report", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run folder or the JSONL written by verl's file logger (VERL_FILE_LOGGER_PATH)")
    parser.add_argument("--out", required=True, help="folder for report.md and the PNGs (created)")
    parser.add_argument("--tensorboard", help="also read this TensorBoard log folder (verl's TENSORBOARD_DIR)")
    parser.add_argument("--title", default="Training report", help="the report's heading")
    args = parser.parse_args(argv)
    run = load_run(args.run, args.tensorboard)
    for w in run.warnings:
        print(f"warning: {w}", file=sys.stderr)
    report = write_report(run, args.out, args.title)
    for w in report.warnings[len(run.warnings) :]:
        print(f"warning: {w}", file=sys.stderr)
    skipped = ", ".join(report.absent) or "none"
    print(f"report: {report.markdown} ({len(report.pngs)} figures; families not logged: {skipped})")
    return 0 if run.metrics else 1


if __name__ == "__main__":
    sys.exit(main())
