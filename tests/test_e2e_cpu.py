"""End to end on CPU: verl's real ``python -m verl.trainer.main_ppo`` with verl_selfplay inside.

Nothing is faked: verl's v1 trainer, TransferQueue, Ray, FSDP2 over gloo, verl's naive checkpoint engine,
our ``hf`` rollout replica (batched transformers ``generate``), ``reward_fns.compute_score`` on the real
``math`` data source and our ``GroupFilterSampler`` (acc-filter) as verl's custom sampler. The tiny model
had a few seconds of addition SFT (``verl_selfplay.tiny``), so it is right about 40% of the time: groups
have non-zero advantages and the acc-filter has groups to keep and to reject.

The first run trains 2 GRPO steps, validates and checkpoints at step 2; the second run resumes from that
checkpoint and trains step 3.
"""

from __future__ import annotations

import math
import re

import pytest
from _e2e import run_main_ppo

from verl_selfplay.cpu.report import rollout_stats

pytestmark = pytest.mark.e2e

SAMPLER = [
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    "+trainer.v1.sampler.sampler_kwargs.filters=[acc]",
    "+trainer.v1.sampler.sampler_kwargs.acc.low=0.1",
    "+trainer.v1.sampler.sampler_kwargs.acc.high=0.8",
    # verl's replay buffer polls TransferQueue every 2 s; the tiny model generates a group in ~50 ms
    "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.2",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e_cpu")


@pytest.fixture(scope="module")
def first_run(run_dir):
    run = run_main_ppo(run_dir, [*SAMPLER, "trainer.save_freq=2", "trainer.test_freq=2"], steps=2)
    assert run.returncode == 0, run.tail()
    return run


def test_two_grpo_steps_with_our_reward_and_sampler(first_run):
    run = first_run
    assert [m["step"] for m in run.metrics] == [1, 2]
    for m in run.metrics:
        # our acc-filter sampler ran and reported
        assert m["training/group_filter/groups_trained"] == 8  # data.train_batch_size prompt groups
        assert m["training/group_filter/groups_generated"] >= m["training/group_filter/groups_kept"] >= 8
        assert 0.1 <= m["training/group_filter/group_metric_mean/kept"] <= 0.8
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


def test_checkpoint_then_resume_for_one_more_step(first_run, run_dir):
    ckpt = run_dir / "checkpoints"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
    assert (ckpt / "global_step_2" / "actor").is_dir()

    resumed = run_main_ppo(run_dir, [*SAMPLER, "trainer.save_freq=1", "trainer.resume_mode=auto"], steps=3)
    assert resumed.returncode == 0, resumed.tail()
    assert [m["step"] for m in resumed.metrics] == [3]  # steps 1-2 were not redone
    step3 = resumed.metrics[0]
    assert step3["actor/grad_norm"] > 0
    # the rollout server got the resumed weights, not the initial ones
    assert step3["training/rollout_probs_diff_max"] < 1e-3
    assert re.search(r"Resuming from \S*global_step_2, setting global step to 2", resumed.log), resumed.tail()
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
