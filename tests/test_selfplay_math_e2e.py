"""``recipes/run_selfplay_math_tiny_cpu.sh`` for real: math self-play with verl's own trainer on CPU, 2 steps.

The recipe runs as a user runs it (bash, this test's Python first on ``PATH``) on the cached tiny math model
(``tiny_math``): verl's trainer in mode ``azr`` with ``azr.domain=math`` generates, votes, trains and checkpoints; the
recipe then prints its per-step table and draws its PNG. Every process it started, Ray's included, is killed after.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _e2e import DEFAULT_TIMEOUT_S, kill_session
from _recipes import RECIPES

from verl_selfplay.cpu.report import read_metrics

pytestmark = pytest.mark.e2e

P = "selfplay_math"
STEPS = 2
SEEDS_IN_BUFFER = 48 - 8  # tiny.MATH_SEEDS minus the recipe's selfplay_math.heldout
PROPOSALS, PROBLEMS, PROBES = 4, 4, 2  # the recipe's azr.propose_per_type, azr.solve_per_type, probes_per_step
CORE = (
    "valid_rate",
    "label_majority_share",
    "added",
    "buffer_size",
    "buffer_labelled",
    "diversity",
    "novelty",
    "label_acc_on_gold",
    "solver_acc",
    "solver_groups_informative",
    "relabelled",
    "label_changed",
    "solver_groups_dropped",
)


def _run_recipe(work: Path, tiny_math, steps: int) -> subprocess.CompletedProcess:
    model_dir, data_dir = tiny_math
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_FILE_LOGGER_PATH",)}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        WORK_DIR=str(work),
        MODEL_PATH=str(model_dir),
        DATA_DIR=str(data_dir),
        STEPS=str(steps),
        PYTHONUNBUFFERED="1",
        RAY_DEDUP_LOGS="0",
        RAY_DISABLE_USAGE_STATS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    proc = subprocess.Popen(
        ["bash", str(RECIPES / "run_selfplay_math_tiny_cpu.sh")],
        cwd=RECIPES.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=DEFAULT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    finally:
        kill_session(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, tiny_math) -> tuple[subprocess.CompletedProcess, Path]:
    work = tmp_path_factory.mktemp("selfplay_math_cpu")
    return _run_recipe(work, tiny_math, STEPS), work


def _buffer(work: Path, step: int) -> list[dict]:
    path = work / "checkpoints" / f"global_step_{step}" / "azr_buffers" / "math.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_recipe_trains_checkpoints_and_reports(recipe_run):
    proc, work = recipe_run
    assert proc.returncode == 0, proc.stdout[-6000:]
    metrics = read_metrics(work / "metrics.jsonl")
    steps = [m for m in metrics if f"{P}/valid_rate" in m]
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))
    for m in steps:
        missing = [name for name in CORE if f"{P}/{name}" not in m]
        assert not missing, (m["step"], missing)
        assert 0.0 <= m[f"{P}/valid_rate"] <= 1.0 and m[f"{P}/buffer_size"] >= SEEDS_IN_BUFFER
        assert m[f"{P}/relabelled"] == 2.0  # selfplay_math.relabel_per_step
        assert sum(v for k, v in m.items() if k.startswith(f"{P}/solve_rate_hist/")) <= 4  # propose_per_type
    assert "val-core/math/acc/mean@1" in metrics[0] and "val-core/math/acc/mean@1" in metrics[-1]

    for m in steps:
        valid = round(m[f"{P}/valid_rate"] * PROPOSALS)
        rejected = sum(v for k, v in m.items() if k.startswith(f"{P}/rejected/"))
        assert valid + rejected == PROPOSALS  # every proposal is valid or rejected with a reason
        assert sum(v for k, v in m.items() if k.startswith(f"{P}/solve_rate_hist/")) == valid
        # the accuracy filter saw every solver group and zeroed the advantages of those it dropped
        assert m[f"{P}/solver_groups_dropped"] + m[f"{P}/solver_groups_kept"] == PROBLEMS
        assert m[f"{P}/solver_groups_zero_advantage"] >= m[f"{P}/solver_groups_dropped"]
        assert abs(m[f"{P}/advantage_mean/propose.math"]) < 1e-4  # whitened within the proposer group
        assert 0.0 <= m[f"{P}/label_acc_on_gold"] <= 1.0 and 0.0 < m[f"{P}/diversity"] <= 2.0
    # the seeding phase labelled seeds by vote before step 1
    assert "AZR seeding round 1" in proc.stdout and steps[0][f"{P}/buffer_labelled"] >= PROBLEMS

    records = _buffer(work, STEPS)
    assert len(records) == steps[-1][f"{P}/buffer_size"]
    proposed = [r for r in records if r["source"] == "proposed"]
    assert len(proposed) == sum(m[f"{P}/added"] for m in steps)
    assert all(r["label"] and 0.0 <= r["solve_rate"] <= 1.0 for r in proposed)  # re-measured by solver groups
    assert not any(r["source"] == "heldout" for r in records)  # held-out problems never enter the buffer
    assert sum(r["source"] == "seed" for r in records) == SEEDS_IN_BUFFER
    assert sum(bool(r["label"]) for r in records) == steps[-1][f"{P}/buffer_labelled"]

    table = proc.stdout[proc.stdout.rindex("step  valid") :].splitlines()
    assert [line.split()[0] for line in table[1 : 2 + STEPS]] == [str(s) for s in range(STEPS + 1)]
    png = work / "selfplay_math_curves.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and f"curves: {png}" in proc.stdout


def test_metric_names_are_a_fixed_set(recipe_run):
    proc, work = recipe_run
    assert proc.returncode == 0
    names = {k for m in read_metrics(work / "metrics.jsonl") for k in m}
    assert not [k for k in names if "{" in k or "\n" in k or len(k) > 100]  # never one metric per proposal
    assert {f"{P}/advantage_mean/propose.math", f"{P}/advantage_mean/solve.math"} <= names


def test_rerunning_with_more_steps_resumes_the_checkpoint_with_its_buffer(recipe_run, tiny_math):
    """The suite's one resume of verl's trainer: the recipe run again with STEPS=3 resumes verl's step-2 checkpoint
    (trainer.resume_mode=auto, verl's default): verl's weights (also in the rollout server), the self-play buffer
    and the probe cursor come back."""
    proc, work = recipe_run
    assert proc.returncode == 0
    before = _buffer(work, STEPS)
    state = json.loads(
        (work / "checkpoints" / f"global_step_{STEPS}" / "azr_buffers" / "sampler_state.json").read_text()
    )
    assert state["domain"]["probe_cursor"] == STEPS * PROBES
    resumed = _run_recipe(work, tiny_math, STEPS + 1)
    assert resumed.returncode == 0, resumed.stdout[-6000:]
    metrics = [m for m in read_metrics(work / "metrics.jsonl") if f"{P}/valid_rate" in m]
    assert [m["step"] for m in metrics] == [STEPS + 1]  # steps 1-2 were not redone
    assert "Restored AZR buffers" in resumed.stdout
    assert re.search(rf"Resuming from \S*global_step_{STEPS}, setting global step to {STEPS}", resumed.stdout)
    assert metrics[0]["actor/grad_norm"] > 0
    assert metrics[0]["training/rollout_probs_diff_max"] < 1e-3  # the rollout server got the resumed weights
    after = _buffer(work, STEPS + 1)
    # step 3 started from the saved problems (below the cap nothing is evicted; labels and solve rates move)
    assert [r["problem"] for r in after[: len(before)]] == [r["problem"] for r in before]
    assert len(after) == len(before) + metrics[0][f"{P}/added"]
    state = json.loads(
        (work / "checkpoints" / f"global_step_{STEPS + 1}" / "azr_buffers" / "sampler_state.json").read_text()
    )
    assert state["domain"]["probe_cursor"] == (STEPS + 1) * PROBES
