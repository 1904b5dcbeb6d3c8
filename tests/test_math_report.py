"""``python -m verl_selfplay.azr.math_report``: the per-step table and the PNG of a math self-play run, from synthetic
metrics lines in the format of verl's ``file`` logger."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from verl_selfplay.azr import math_report

P = "selfplay_math"


def _step(step: int, **extra: float) -> dict:
    data = {
        f"{P}/valid_rate": 0.5 + 0.1 * step,
        f"{P}/learnability": 0.25 * step,
        f"{P}/label_majority_share": 0.75,
        f"{P}/added": float(step),
        f"{P}/buffer_size": 40.0 + step,
        f"{P}/buffer_labelled": 4.0 + step,
        f"{P}/diversity": 0.4,
        f"{P}/novelty": float("nan") if step == 1 else 0.2,
        f"{P}/label_acc_on_gold": 0.5,
        f"{P}/solver_acc": 0.625,
        f"{P}/solver_groups_informative": 0.75,
        f"{P}/relabelled": 2.0,
        f"{P}/label_changed": 0.0,
        f"{P}/similarity_penalty": 0.125,
        f"{P}/solve_rate_hist/0.0-0.2": 0.0,
        f"{P}/solve_rate_hist/0.2-0.4": 1.0,
        f"{P}/solve_rate_hist/0.4-0.6": 1.0,
        f"{P}/solve_rate_hist/0.6-0.8": 0.0,
        f"{P}/solve_rate_hist/0.8-1.0": float(step),
        "timing_s/step": 12.5,
        **extra,
    }
    return {"step": step, "data": data}


def _metrics_file(tmp_path: Path) -> Path:
    lines = [
        {"step": 0, "data": {"val-core/math/acc/mean@1": 0.25}},  # val_before_train
        _step(1, **{f"{P}/rejected/unstable_label": 2.0}),
        _step(2, **{f"{P}/rejected/near_duplicate": 1.0}),
        _step(3),
        {"step": 3, "data": {"val-core/math/acc/mean@1": 0.5}},  # validation logs its own line
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_table_has_a_row_per_step_and_a_column_per_rejection_reason(tmp_path, capsys):
    png = tmp_path / "curves.png"
    assert math_report.main([str(_metrics_file(tmp_path)), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["step", "valid", "learn", "maj_s"]
    for col in ("buffer", "div", "novelty", "lab_gold", "solv_acc", "val_acc", "rej_near_duplicate"):
        assert col in header, (col, header)
    assert header[-5:] == ["s0.0-0.2", "s0.2-0.4", "s0.4-0.6", "s0.6-0.8", "s0.8-1.0"]  # bins low to high
    rows = {int(line.split()[0]): dict(zip(header, line.split(), strict=True)) for line in lines[1:5]}
    assert sorted(rows) == [0, 1, 2, 3]
    assert rows[0]["val_acc"] == "0.250" and rows[0]["valid"] == "-"  # the validation-only line
    assert rows[3]["val_acc"] == "0.500" and rows[3]["buffer"] == "43.000"  # merged lines of one step
    assert rows[1]["rej_unstable_label"] == "2.000" and rows[1]["rej_near_duplicate"] == "0.000"  # 0, not "-"
    assert rows[2]["rej_near_duplicate"] == "1.000" and rows[1]["novelty"] == "nan"
    assert f"curves: {png}" in out


def test_png_is_drawn(tmp_path):
    png = tmp_path / "curves.png"
    metrics = math_report.read_metrics(_metrics_file(tmp_path))
    assert math_report.plot(metrics, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_columns_follow_what_the_run_logged():
    metrics = [_step(1, **{f"{P}/rejected/format": 1.0, f"{P}/rejected/copy": 3.0})]
    metrics = [{"step": m["step"], **m["data"]} for m in metrics]
    labels = [label for label, _ in math_report.columns(metrics)]
    assert labels.index("rej_copy") < labels.index("rej_format") < labels.index("s0.0-0.2")
    assert not any(label.startswith("rej_") for label, _ in math_report.columns([{"step": 1}]))


def test_an_empty_metrics_file_is_an_error(tmp_path):
    empty = tmp_path / "m.jsonl"
    empty.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "verl_selfplay.azr.math_report", str(empty)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "no metrics" in proc.stderr


def test_doctests():
    import doctest

    result = doctest.testmod(math_report)
    assert result.attempted > 0 and result.failed == 0
