"""End to end on CPU: two GRPO steps of verl's real trainer with every group filter and vote relabelling on.

verl's ``python -m verl.trainer.main_ppo`` runs with the CPU backend and the tiny addition model
(``tests/_e2e.py``); nothing in the loop is faked. Half of the training prompts are relabelled to the
``vote`` data source (their true labels stay in ``reward_model.ground_truth``), so each step mixes
majority-voted and labelled groups. The sampler runs the acc-filter, a group-level length filter, a
sample-level repetition filter and the relabelling, refilling rejected groups.

What the filters removed is checked against verl's own metrics of the trained batch: no trained response
is longer than the length limit (``response_length/max``), and the group counts add up.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from _e2e import run_main_ppo, tiny_assets

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
REASONS = ("rollout_failure", "acc_too_low", "acc_too_high", "length", "repetition")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e_filters")
    model_dir, data_dir = tiny_assets()
    train = pd.read_parquet(data_dir / "train.parquet")
    train["data_source"] = ["vote" if i % 2 else source for i, source in enumerate(train["data_source"])]
    train.to_parquet(tmp / "train_vote.parquet")
    result = run_main_ppo(tmp, [*FILTERS, f"data.train_files={tmp / 'train_vote.parquet'}"], steps=2)
    assert result.returncode == 0, result.tail()
    return result


def test_filters_and_vote_report_every_step(run):
    assert [m["step"] for m in run.metrics] == [1, 2]
    for m in run.metrics:
        generated = m["training/group_filter/groups_generated"]
        rejected = sum(m[f"training/group_filter/groups_rejected/{r}"] for r in REASONS)
        assert generated == m["training/group_filter/groups_kept"] + rejected
        trained = m["training/group_filter/groups_trained"]
        assert 0 < trained <= 8 and m["training/group_filter/groups_kept"] >= trained
        assert trained == 8 or m["training/group_filter/round_cap_hit"] == 1.0
        assert m["training/group_filter/gen_rounds"] >= 1
        assert 0.1 <= m["training/group_filter/group_metric_mean/kept"] <= 0.8
        assert "training/group_filter/samples_masked/repetition" in m
        # vote relabelling ran on the `vote` rows and compared its labels with the true ones
        assert m["training/vote/groups"] > 0 and m["training/vote/labelled_groups"] == m["training/vote/groups"]
        assert 0.0 <= m["training/vote/label_agreement"] <= 1.0
        assert 0.0 < m["training/vote/majority_ratio"] <= 1.0


def test_length_filter_removed_long_responses_from_training(run):
    for m in run.metrics:
        assert m["response_length/max"] <= MAX_LENGTH  # verl's own metric over the trained batch


def test_training_still_learns(run):
    for m in run.metrics:
        assert m["critic/advantages/max"] > 0 > m["critic/advantages/min"]
        assert m["actor/grad_norm"] > 0 and math.isfinite(m["actor/grad_norm"])
