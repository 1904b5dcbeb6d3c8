"""verl_selfplay.report: the training report of any run, from synthetic verl file-logger (and TensorBoard) output.

The metric names are the ones our runs log (verl's own, ``training/group_filter/*``, ``pcl/*``, ``azr/*``,
``selfplay_math/*``, ``behaviour/*``); every run of the CLI is a real subprocess.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from verl_selfplay import report
from verl_selfplay.cpu import report as cpu_report

ROOT = Path(__file__).resolve().parents[1]
BEHAVIOURS = (
    "verification",
    "backtracking",
    "subgoal_setting",
    "backward_chaining",
    "thinking_words",
    "language_mixing",
    "repetition",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _step(step: int, families: set[str]) -> dict[str, float | None]:
    """One step's metrics of the given families, with values that move with the step."""
    t = step / 10
    data: dict[str, float | None] = {"critic/score/mean": 0.2 + t, "timing_s/step": 3.0 + t}
    if "core" in families:
        data |= {
            "response_length/mean": 100 - step,
            "response_length/max": 200.0,
            "response_length/clip_ratio": 0.1,
            "actor/entropy": 1.5 - t,
            "actor/grad_norm": 0.7,
        }
        if step % 2 == 1:
            data |= {"val-core/math/acc/mean@1": 0.1 * step, "val-core/math/acc/best@4/std": 0.3}
    if "filter" in families:
        data |= {
            "training/group_filter/keep_rate": 0.5,
            "training/group_filter/groups_rejected/acc_too_low": 3.0,
            "training/group_filter/groups_rejected/acc_too_high": 1.0,
            "training/group_filter/group_metric_mean/generated": 0.3 + t / 2,
        }
    if "pcl" in families:
        data |= {"pcl/predicted_reward/mean": 0.5, "pcl/actual_reward/mean": 0.4 + t, "pcl/value_mse": 0.2 - t / 10}
    if "azr" in families:
        for task in ("deduction", "abduction", "induction"):
            data |= {f"azr/{task}/valid_rate": 0.6, f"azr/{task}/buffer_size": 10.0 * step}
        data["azr/deduction/rejected/not_deterministic"] = 2.0
    if "selfplay_math" in families:
        data |= {
            "selfplay_math/valid_rate": 0.7,
            "selfplay_math/learnability": 0.3,
            "selfplay_math/label_majority_share": 0.6,
            "selfplay_math/buffer_size": 5.0 * step,
            "selfplay_math/diversity": 0.9,
            "selfplay_math/novelty": 0.4,
            "selfplay_math/label_acc_on_gold": 0.8,
            "selfplay_math/rejected/no_answer": 1.0,
        }
    if "behaviours" in families:
        for k, name in enumerate(BEHAVIOURS):
            data |= {f"behaviour/{name}/rate": k / 10 + t / 10, f"behaviour/{name}/reward_gap": 0.1 * k - t}
    return data


def _write(path: Path, steps: range, families: set[str]) -> Path:
    lines = [json.dumps({"step": s, "data": _step(s, families)}) for s in steps]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "verl_selfplay.report", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


ALL = {"core", "filter", "pcl", "azr", "selfplay_math", "behaviours"}


def test_every_family_of_a_full_run_is_drawn_and_linked(tmp_path):
    metrics = _write(tmp_path / "metrics.jsonl", range(1, 11), ALL)
    proc = _cli(str(tmp_path), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "report"
    md = (out / "report.md").read_text()
    drawn = {"reward", "length", "entropy", "group_filter", "pcl", "azr", "selfplay_math", "behaviours", "timing"}
    for name in drawn:
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name}.png)" in md, name
    assert not (out / "vote.png").exists()
    assert "Majority vote (TTRL): no `training/vote/*` metrics" in md
    assert f"`{metrics}`" in md and "10 steps logged, 1 to 10." in md
    assert "families not logged: vote" in proc.stdout


def test_key_numbers_are_first_best_and_last(tmp_path):
    _write(tmp_path / "m.jsonl", range(1, 11), ALL)
    run = report.load_run(tmp_path / "m.jsonl")
    numbers = {n.key: n for n in report.key_numbers(run.metrics)}
    score = numbers["critic/score/mean"]
    assert score.first == (1, pytest.approx(0.3)) and score.last == (10, pytest.approx(1.2))
    assert score.best == (10, pytest.approx(1.2))
    val = numbers["val-core/math/acc/mean@1"]  # logged on odd steps only
    assert val.first[0] == 1 and val.last[0] == 9 and val.best == (9, pytest.approx(0.9))
    mse = numbers["pcl/value_mse"]  # lower is better
    assert mse.best == (10, pytest.approx(0.1))
    assert numbers["actor/entropy"].best is None  # no better direction: no best column value
    assert "val-core/math/acc/best@4/std" not in numbers
    for name in BEHAVIOURS:
        assert numbers[f"behaviour/{name}/rate"].family == "Reasoning behaviours"
        assert f"behaviour/{name}/reward_gap" in numbers
    assert numbers["selfplay_math/label_acc_on_gold"].last == (10, pytest.approx(0.8))
    md = report.write_report(run, tmp_path / "out").markdown.read_text()
    assert "| Reward and accuracy | score (mean) (`critic/score/mean`) | 0.300 (step 1) | 1.200 (step 10) |" in md


def test_behaviour_lines_are_named_after_the_behaviour():
    panel = next(f for f in report.FAMILIES if f.name == "behaviours").panels[0]
    keys = [f"behaviour/{n}/rate" for n in BEHAVIOURS] + ["behaviour/verification/reward_gap", "critic/score/mean"]
    assert sorted(label for label, _ in report.series_of(panel, keys)) == sorted(BEHAVIOURS)


def test_absent_families_are_skipped_and_named(tmp_path):
    _write(tmp_path / "metrics.jsonl", range(1, 4), set())  # only critic/score/mean and timing_s/step
    rep = report.write_report(report.load_run(tmp_path), tmp_path / "out")
    assert set(rep.pngs) == {"reward", "timing"}
    assert set(rep.absent) == {f.name for f in report.FAMILIES} - {"reward", "timing"}
    md = rep.markdown.read_text()
    for hint in ("behaviour/*", "selfplay_math/*", "azr/*", "pcl/*", "training/group_filter/*"):
        assert f"no `{hint}` metrics" in md
    assert "![Reasoning behaviours]" not in md


def test_a_truncated_file_gives_a_report_of_what_was_read_and_names_the_line(tmp_path):
    path = _write(tmp_path / "metrics.jsonl", range(1, 6), ALL)
    text = path.read_text().splitlines()
    text.insert(2, "[1, 2, 3]")  # line 3: JSON, but not a file-logger line
    text.append('{"step": 6, "data": {"critic/score/me')  # line 7: cut off mid-write
    path.write_text("\n".join(text))
    proc = _cli(str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:7: not a JSON line (truncated?)" in proc.stderr
    assert f"{path}:3: not a verl file-logger line" in proc.stderr
    assert "Traceback" not in proc.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert "5 steps logged, 1 to 5." in md and f"{path}:7:" in md
    assert (tmp_path / "out" / "behaviours.png").exists()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "garbage\n",
        '{"step": "one", "data": {}}\n',
        '{"step": 1, "data": {"x": "text"}}\n',
        '{"step": NaN, "data": {"x": 1}}',
    ],
)
def test_nothing_readable_is_a_failure_exit_with_a_report_that_says_so(tmp_path, content):
    path = tmp_path / "metrics.jsonl"
    path.write_text(content)
    proc = _cli(str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    md = (tmp_path / "out" / "report.md").read_text()
    assert "No metrics could be read" in md
    assert not list((tmp_path / "out").glob("*.png"))


def test_a_binary_file_gives_a_bounded_list_of_warnings(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(bytes(range(256)) * 40 + b"\n" * 50 + b"\xff\xfe junk\n" * 30)
    warnings: list[str] = []
    assert report.read_metrics(path, warnings) == []
    assert len(warnings) == report.MAX_LINE_WARNINGS + 1 and "more unreadable lines skipped" in warnings[-1]


def test_a_missing_path_or_an_empty_folder_is_named(tmp_path):
    proc = _cli(str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and f"{tmp_path / 'nope'}: no such file or folder" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = _cli(str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and "no metrics.jsonl" in proc.stderr


def test_nan_values_are_gaps_not_points(tmp_path):
    path = tmp_path / "m.jsonl"
    rows = [{"step": 1, "data": {"pcl/actual_reward/mean": 0.5}}, {"step": 2, "data": {"pcl/actual_reward/mean": None}}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with path.open("a") as f:
        f.write('\n{"step": 3, "data": {"pcl/actual_reward/mean": 1%s, "x": Infinity}}' % ("0" * 400))
    metrics = report.read_metrics(path)
    assert math.isnan(metrics[1]["pcl/actual_reward/mean"])
    assert metrics[2]["pcl/actual_reward/mean"] == math.inf
    assert report.points(metrics, "pcl/actual_reward/mean") == [(1, 0.5)]


def test_a_run_folder_without_metrics_jsonl_finds_the_file_logger_output(tmp_path):
    nested = tmp_path / "verl_selfplay"
    nested.mkdir()
    (tmp_path / "other.jsonl").write_text('{"id": 1}\n')  # a data file, not metrics
    _write(nested / "exp.jsonl", range(1, 3), set())
    run = report.load_run(tmp_path)
    assert run.sources == [str(nested / "exp.jsonl")] and len(run.metrics) == 2


def test_tensorboard_scalars_fill_in_what_the_jsonl_lacks(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "tb"
    writer = SummaryWriter(str(tb))
    for step in (1, 2, 3):
        writer.add_scalar("behaviour/verification/rate", 0.1 * step, step)
        writer.add_scalar("critic/score/mean", 99.0, step)  # the JSONL's value wins
    writer.close()
    path = _write(tmp_path / "metrics.jsonl", range(1, 4), set())
    run = report.load_run(path, tensorboard=tb)
    assert [m["behaviour/verification/rate"] for m in run.metrics] == pytest.approx([0.1, 0.2, 0.3])
    assert run.metrics[0]["critic/score/mean"] == pytest.approx(0.3)
    rep = report.write_report(run, tmp_path / "out")
    assert "behaviours" in rep.pngs
    only_tb = report.load_run(tb)  # a folder of event files alone
    assert len(only_tb.metrics) == 3 and not only_tb.warnings


def test_cpu_report_is_a_thin_caller_of_the_general_one(tmp_path):
    path = _write(tmp_path / "metrics.jsonl", range(1, 4), {"core", "filter"})
    assert cpu_report.read_metrics is report.read_metrics
    proc = subprocess.run(
        [sys.executable, "-m", "verl_selfplay.cpu.report", str(path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["step", "acc_gen", "score"]
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "group_filter.png").exists()


def test_doctests():
    import doctest

    result = doctest.testmod(report)
    assert result.attempted >= 3 and result.failed == 0


_SHIM = """#!{python}
import json, os, sys
with open(os.environ["REPORT_TEST_CALLS"], "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "metrics": os.environ.get("VERL_FILE_LOGGER_PATH")}}) + "\\n")
"""


@pytest.mark.parametrize("script", sorted((ROOT / "recipes").glob("run_*.sh")), ids=lambda p: p.name)
def test_every_recipe_prints_the_report_command_of_its_own_metrics_at_its_end(script, tmp_path):
    """Run the recipe with a recording ``python3``: its last line of output is the report command, whose run
    folder holds the metrics file verl's file logger (on in the command) writes."""
    shim = tmp_path / "shim"
    shim.mkdir()
    for name in ("python3", "python"):
        (shim / name).write_text(_SHIM.format(python=sys.executable))
        (shim / name).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {
        "PATH": f"{shim}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "REPORT_TEST_CALLS": str(calls),
        "WORK_DIR": str(tmp_path / "work"),
        "VIRTUAL_ENV": "shim",
    }
    proc = subprocess.run(["bash", str(script)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    prefix = "training report: python3 -m verl_selfplay.report "
    assert last.startswith(prefix), last
    run_dir, flag, out = last[len(prefix) :].split()
    assert flag == "--out" and out == f"{run_dir}/report"
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    main = next(c for c in recorded if c["argv"][:2] == ["-m", "verl.trainer.main_ppo"])
    assert any(a.startswith("trainer.logger=") and "file" in a for a in main["argv"]), main["argv"]
    assert Path(main["metrics"]).parent == Path(run_dir)
