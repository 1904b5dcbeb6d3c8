"""End to end on CPU: one run of verl's real ``python -m verl.trainer.main_ppo`` exercises all our verl parts.

Nothing is faked: verl's v1 trainer, TransferQueue, Ray, FSDP2 over gloo, verl's naive checkpoint engine, our
``hf`` rollout replica (batched transformers ``generate``), ``reward_fns.compute_score`` as the reward. The tiny
model had a few seconds of addition SFT (``verl_selfplay.tiny``), so it is right about 40% of the time: groups
have non-zero advantages and the filters have groups to keep and to reject.

One run, several of our parts at once (each asserted through its own metrics):

- trainer mode ``pcl`` (PCL selection, k=2) with the tiny model itself as the ``llm`` value model on verl's worker
  group (``+pcl.value_model=llm``); the MiniLM ``embedding`` value model is tested in-process;
- ``GroupFilterSampler`` as verl's custom sampler, with the acc-filter, a group-level length filter and a
  sample-level repetition filter, refilling rejected groups through PCL's selection;
- TTRL vote relabelling: half of the training prompts use the ``vote`` data source (their true labels move to
  ``extra_info.eval_ground_truth``, used only for the agreement metric), so each step mixes majority-voted and labelled groups;
- the CPU backend: the rollout's log-probs equal the FSDP actor's, the ``hf`` server batches requests;
- reasoning-behaviour metrics (``behaviour/*``, sampled: ``behaviours.max_responses``), also in the AZR run below.

It trains 2 steps and validates at step 2. A second run is Absolute Zero self-play (trainer mode ``azr``, the
tiny AZR model, Task-Relative REINFORCE++, the sandbox) with the model-text guard armed in every process. The
suite's one resume of verl's trainer is math self-play's (``tests/test_selfplay_math_e2e.py``: verl's weights, the
self-play buffer and its sampler state); the AZR buffers' and PCL's checkpoint round trips are exact in-process
(``tests/test_azr_trainer.py``, ``tests/test_pcl_trainer.py``, ``tests/test_value_worker.py``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from _e2e import run_main_ppo

from reward_fns.behaviours import BEHAVIOURS
from verl_selfplay.cpu.report import rollout_stats

pytestmark = pytest.mark.e2e

MAX_LENGTH = 16  # tokens; the tiny model's well-formed answers are about 12
KW = "+trainer.v1.sampler.sampler_kwargs"
FILTERS = [
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    f"{KW}.filters=[acc,length,repetition]",
    f"{KW}.acc.low=0.1",
    f"{KW}.acc.high=0.8",
    f"{KW}.length.level=group",
    f"{KW}.length.max_length={MAX_LENGTH}",
    f"{KW}.repetition.level=sample",
    f"{KW}.repetition.n=3",
    f"{KW}.repetition.threshold=0.5",
    f"{KW}.max_extra_gen_rounds=8",
    f"{KW}.poll_interval=0.2",  # the tiny model generates a group in ~50 ms; verl's default poll is 2 s
]
PCL_K = 2
PCL = [
    "trainer.v1.trainer_mode=pcl",
    f"+pcl.k={PCL_K}",
    "+pcl.metric=acc",
    "+pcl.value_model=llm",  # the tiny model itself, on verl's TrainingWorker group beside the actor
    "critic.use_dynamic_bsz=true",
    "critic.ppo_max_token_len_per_gpu=256",
    "critic.optim.lr=1e-3",
]
BEHAVIOUR_SAMPLE = 16  # behaviours.max_responses: fewer than the 32 trained responses, so the sample is drawn
REASONS = ("rollout_failure", "invalid_metric", "acc_too_low", "acc_too_high", "length", "repetition")
BATCH = 8  # data.train_batch_size in tests/_e2e.py


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny):
    tmp = tmp_path_factory.mktemp("e2e")
    _, data_dir = tiny
    train = pd.read_parquet(data_dir / "train.parquet")
    voted = [i % 2 == 1 for i in range(len(train))]
    train["data_source"] = ["vote" if v else source for v, source in zip(voted, train["data_source"], strict=True)]
    # a vote row keeps its true label only under extra_info.eval_ground_truth (for label_agreement), never as reward
    train["extra_info"] = [
        {**info, "eval_ground_truth": rm["ground_truth"]} if v else info
        for v, info, rm in zip(voted, train["extra_info"], train["reward_model"], strict=True)
    ]
    train["reward_model"] = [
        {**rm, "ground_truth": ""} if v else rm for v, rm in zip(voted, train["reward_model"], strict=True)
    ]
    train.to_parquet(tmp / "train_vote.parquet")
    return tmp


def _overrides(run_dir, *extra: str) -> list[str]:
    return [*FILTERS, *PCL, f"data.train_files={run_dir / 'train_vote.parquet'}", *extra]


@pytest.fixture(scope="module")
def run(run_dir, tiny):
    result = run_main_ppo(
        run_dir,
        _overrides(
            run_dir, "trainer.save_freq=2", "trainer.test_freq=2", f"+behaviours.max_responses={BEHAVIOUR_SAMPLE}"
        ),
        steps=2,
        assets=tiny,
    )
    assert result.returncode == 0, result.tail()
    assert [m["step"] for m in result.metrics] == [1, 2]
    return result


def test_grpo_learns_with_our_reward_on_the_cpu_backend(run):
    for m in run.metrics:
        # reward_fns (R1 scheme: format + accuracy, in [0, 2]) and a learning signal
        assert 0.0 < m["critic/score/mean"] < 2.0
        assert m["critic/advantages/max"] > 0 > m["critic/advantages/min"]
        assert m["actor/grad_norm"] > 0 and math.isfinite(m["actor/grad_norm"])
        # the hf rollout's log-probs are the FSDP actor's (verl's own comparison)
        assert m["training/rollout_probs_diff_valid"] == 1
        assert m["training/rollout_probs_diff_max"] < 1e-3
        assert m["training/rollout_actor_probs_pearson_corr"] > 0.999
        for key in ("gen", "old_log_prob", "update_actor", "update_weights"):
            assert m[f"timing_s/{key}"] > 0
    # reward_fns' extra keys reach verl's validation metrics
    last = run.metrics[-1]
    assert 0.0 <= last["val-core/math/acc/mean@1"] <= 1.0 and last["val-aux/math/format_ok/mean@1"] > 0.5
    # the hf server batched the requests (one generate call per burst, not per request)
    stats = rollout_stats(run.log)
    assert stats and all(s["requests"] > s["batches"] for s in stats), stats


def test_group_filters_report_every_step(run):
    for m in run.metrics:
        generated = m["training/group_filter/groups_generated"]
        rejected = sum(m[f"training/group_filter/groups_rejected/{r}"] for r in REASONS)
        assert generated == m["training/group_filter/groups_kept"] + rejected
        trained = m["training/group_filter/groups_trained"]
        assert 0 < trained <= BATCH and m["training/group_filter/groups_kept"] >= trained
        assert trained == BATCH or m["training/group_filter/round_cap_hit"] == 1.0
        assert m["training/group_filter/gen_rounds"] >= 1
        assert m["training/group_filter/groups_rejected/invalid_metric"] == 0  # reward_fns never reports NaN
        assert 0.1 <= m["training/group_filter/group_metric_mean/kept"] <= 0.8
        assert "training/group_filter/samples_masked/repetition" in m
        # the length filter removed long responses from training (verl's own metric over the trained batch)
        assert m["response_length/max"] <= MAX_LENGTH


def _assert_behaviour_metrics(m: dict, responses: int) -> None:
    assert m["behaviour/responses"] == responses
    for name in BEHAVIOURS:
        assert 0.0 <= m[f"behaviour/{name}/rate"] <= 1.0, name
        gap = m[f"behaviour/{name}/reward_gap"]  # null (read as NaN) when no response, or every one, shows it
        assert (gap is None or math.isnan(gap)) == (m[f"behaviour/{name}/rate"] in (0.0, 1.0)), (name, gap)
    assert m["behaviour/length_words/mean"] > 0 and m["behaviour/seconds"] > 0


def test_behaviour_metrics_every_step(run):
    for m in run.metrics:
        trained = m["training/group_filter/groups_trained"] * 4  # rollout.n
        _assert_behaviour_metrics(m, min(BEHAVIOUR_SAMPLE, trained))


def test_vote_relabelling_ran_on_the_vote_rows(run):
    for m in run.metrics:
        assert m["training/vote/groups"] > 0 and m["training/vote/labelled_groups"] == m["training/vote/groups"]
        agreeing = m["training/vote/label_agreement"] * m["training/vote/groups"]  # a count of whole groups
        assert abs(agreeing - round(agreeing)) < 1e-6
        assert 0.0 < m["training/vote/majority_ratio"] <= 1.0


def test_pcl_selected_every_prompt_including_refills(run, run_dir):
    for m in run.metrics:
        # every prompt group the sampler judged (first round and refills) was chosen by PCL from k candidates
        assert m["pcl/candidates"] == PCL_K * m["training/group_filter/groups_generated"]
        assert m["pcl/predict_fallback"] == 0
        assert 0.0 <= m["pcl/effective_ratio"] <= 1.0 and 0.0 <= m["pcl/actual_reward/mean"] <= 1.0
        assert np.isfinite(m["pcl/value_loss"]) and np.isfinite(m["pcl/calibration_error"])
        assert m["pcl/time/generation_s"] > 0 and m["pcl/time/selection_s"] > 0
    saved = torch.load(run_dir / "checkpoints" / "global_step_2" / "pcl_state.pt", weights_only=True)
    assert saved["value_model"]["updates"] == 2


def test_pcl_selects_with_the_llm_value_model_on_the_workers(run, run_dir, tiny):
    for m in run.metrics:
        assert "pcl/update_failed" not in m
        assert 0.0 < m["pcl/candidate_predicted/mean"] < 1.0  # the sigmoid of the value head
        assert np.isfinite(m["pcl/value_mse"]) and m["pcl/time/value_update_s"] > 0
    # the value model is the tiny model (its config, with a one-label value head), saved by the workers
    model_dir, _ = tiny
    folder = run_dir / "checkpoints" / "global_step_2"
    saved = json.loads((folder / "pcl_value_model" / "huggingface" / "config.json").read_text())
    tiny_config = json.loads((model_dir / "config.json").read_text())
    assert saved["hidden_size"] == tiny_config["hidden_size"] and saved["num_hidden_layers"] == 2
    assert len(saved["id2label"]) == 1  # num_labels=1: verl's value head (Qwen2ForTokenClassification)
    assert any(p.name.startswith("optim") for p in (folder / "pcl_value_model").iterdir())
    state = torch.load(folder / "pcl_state.pt", weights_only=True)
    assert state["value_model"] == {"kind": "llm", "updates": 2}
    assert "Qwen2ForTokenClassification contains" in run.log  # built on the worker, not in the driver


# ------------------------------------------------------------------------------------------ Absolute Zero

AZR_PER_TYPE = 4
AZR = [
    "trainer.v1.trainer_mode=azr",
    "algorithm.adv_estimator=task_relative_reinforce_plus_plus",
    "+reward.custom_reward_function.reward_kwargs.scheme=azr",
    "actor_rollout_ref.rollout.n=1",
    f"data.train_batch_size={6 * AZR_PER_TYPE}",
    f"actor_rollout_ref.actor.ppo_mini_batch_size={6 * AZR_PER_TYPE}",
    f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={6 * AZR_PER_TYPE}",
    f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={6 * AZR_PER_TYPE}",
    f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={6 * AZR_PER_TYPE}",
    "actor_rollout_ref.actor.optim.lr=1e-4",
    "data.max_prompt_length=256",
    "data.max_response_length=96",
    f"+azr.propose_per_type={AZR_PER_TYPE}",
    f"+azr.solve_per_type={AZR_PER_TYPE}",
    "+azr.n_learn=4",
    "+azr.n_references=1",
    "+azr.induction_inputs=4",
    "+azr.induction_visible=2",
    "+azr.timeout=2",
    "+azr.prompt_style=compact",
]
AZR_SEED_BUFFER = 12  # the seeding phase fills every buffer to this many tasks before step 1
AZR_TYPES = ("deduction", "abduction", "induction")


def test_the_training_report_draws_every_family_the_run_logged(run, tmp_path):
    from verl_selfplay.report import Run, write_report

    report = write_report(Run(metrics=run.metrics), tmp_path)
    families = {"reward", "length", "entropy", "group_filter", "vote", "pcl", "behaviours", "timing"}
    assert families <= set(report.pngs), report.absent
    assert {"azr", "selfplay_math"} <= set(report.absent)
    text = report.markdown.read_text()
    for key in (
        "critic/score/mean",
        "val-core/math/acc/mean@1",
        "training/group_filter/keep_rate",
        "pcl/actual_reward/mean",
    ):
        assert f"(`{key}`)" in text, key


@pytest.fixture(scope="module")
def azr_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e_azr")


def _azr_run(azr_dir, tiny_azr, steps: int, *extra: str):
    model_dir, data_dir = tiny_azr
    guard_log = azr_dir / f"guard_{steps}.log"
    overrides = [*AZR, f"data.train_files={data_dir / 'train.parquet'}", f"data.val_files={data_dir / 'test.parquet'}"]
    env = {"VERL_SELFPLAY_MODEL_TEXT_GUARD": "1", "VERL_SELFPLAY_MODEL_TEXT_GUARD_LOG": str(guard_log)}
    run = run_main_ppo(azr_dir, [*overrides, *extra], steps=steps, assets=tiny_azr, env=env)
    return run, guard_log


@pytest.fixture(scope="module")
def azr_run(azr_dir, tiny_azr):
    seeding = f"+azr.seed_buffer_size={AZR_SEED_BUFFER}"
    run, guard_log = _azr_run(azr_dir, tiny_azr, 2, "trainer.save_freq=2", "trainer.test_freq=2", seeding)
    assert run.returncode == 0, run.tail()
    assert [m["step"] for m in run.metrics] == [1, 2]
    return run, guard_log


def _buffer_lines(folder) -> dict[str, list[str]]:
    return {t: (folder / "azr_buffers" / f"{t}.jsonl").read_text().splitlines() for t in AZR_TYPES}


def test_azr_self_play_reports_every_metric_and_grows_its_buffers(azr_run, azr_dir):
    run, _ = azr_run
    for m in run.metrics:
        for t in AZR_TYPES:
            for name in ("valid_rate", "learnability", "solver_acc", "buffer_size"):
                assert f"azr/{t}/{name}" in m, (t, name)
            proposals = AZR_PER_TYPE
            valid = round(m[f"azr/{t}/valid_rate"] * proposals)
            rejected = sum(v for k, v in m.items() if k.startswith(f"azr/{t}/rejected/"))
            assert valid + rejected == proposals  # every proposal is either valid or rejected with a reason
        assert m["azr/sandbox_s"] > 0
        # one actor update over all six (role, task) groups, with a learning signal
        assert m["actor/grad_norm"] > 0 and math.isfinite(m["actor/grad_norm"])
        # Task-Relative REINFORCE++: every group's advantages are whitened within the group
        means = {k: v for k, v in m.items() if k.startswith("azr/advantage_mean/")}
        assert len(means) == 6 and all(abs(v) < 1e-4 for v in means.values()), means
    # valid proposals were harvested: the buffers grew beyond the seeds by exactly the tasks added
    added = {t: sum(m[f"azr/{t}/added"] for m in run.metrics) for t in AZR_TYPES}
    assert sum(added.values()) > 0, added
    saved = _buffer_lines(azr_dir / "checkpoints" / "global_step_2")
    for t in AZR_TYPES:
        assert len(saved[t]) == run.metrics[-1][f"azr/{t}/buffer_size"]
        proposed = [json.loads(line) for line in saved[t] if json.loads(line)["source"] == "proposed"]
        assert len(proposed) == added[t] and all(task["step"] in (1, 2) for task in proposed)
    # the seeding phase ran before step 1: the model's untrained proposals filled every buffer to the target
    assert "AZR seeding round 1" in run.log
    for t in AZR_TYPES:
        first = run.metrics[0]
        assert first[f"azr/{t}/buffer_size"] - first[f"azr/{t}/added"] >= AZR_SEED_BUFFER, t
        assert any(json.loads(line)["source"] == "seeding" for line in saved[t]), t
    # the fixed validation set was scored
    for t in AZR_TYPES:
        assert f"val-core/azr_{t}/acc/mean@1" in run.metrics[-1]


def test_azr_behaviour_metrics_cover_proposer_and_solver_rows(azr_run):
    run, _ = azr_run
    for m in run.metrics:  # every row of the step (fewer than behaviours.max_responses): proposers' rewards too
        _assert_behaviour_metrics(m, 6 * AZR_PER_TYPE)


def test_the_training_report_draws_the_azr_curves(azr_run, tmp_path):
    from verl_selfplay.report import Run, write_report

    run, _ = azr_run
    report = write_report(Run(metrics=run.metrics), tmp_path)
    assert {"reward", "azr"} <= set(report.pngs) and "group_filter" in report.absent
    assert "(`azr/deduction/valid_rate`)" in report.markdown.read_text()


def test_no_model_text_ran_outside_the_sandbox(azr_run):
    _, guard_log = azr_run
    lines = guard_log.read_text().splitlines()
    armed = {line.split(":")[0] for line in lines if line.startswith("armed")}
    assert len(armed) >= 3, lines  # the trainer, the agent-loop worker and the reward worker at least
    assert [line for line in lines if not line.startswith("armed")] == []
