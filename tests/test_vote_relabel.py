"""Majority-vote relabelling (TTRL): the pure vote, and the rewrite inside verl's replay buffer before advantages.

GroupFilterSampler is built by verl's ``PPOTrainer._build_replay_buffer`` from verl's composed config and
reads trajectories in the layout verl's agent loop writes (``tests/_sampler_harness.py``). TransferQueue is
the in-memory ``FakeTQ`` (the five ``transfer_queue`` functions verl calls); the real TransferQueue path is
covered in ``tests/test_filters.py``. Advantages are computed by verl's own ``PPOTrainer._compute_advantage``
on the batch the sampler returns, which is what proves the re-score happens before advantages.
"""

from __future__ import annotations

import doctest

import pytest
import torch
from _sampler_harness import (
    FakeTQ,
    Generator,
    Group,
    Rollout,
    build_sampler,
    compose_config,
    compute_advantages,
    patch_tq,
    submit,
)

from verl_selfplay.ttrl import relabel as vote_relabel
from verl_selfplay.ttrl.relabel import VoteStats, relabel_group

KW = "+trainer.v1.sampler.sampler_kwargs"
BASE = [
    "actor_rollout_ref.rollout.n=4",
    "data.max_response_length=16",
    "data.train_batch_size=2",
    "algorithm.adv_estimator=grpo",
    f"{KW}.filters=[]",
]


def test_docstring_examples():
    result = doctest.testmod(vote_relabel)
    assert result.attempted > 0 and result.failed == 0


def test_equivalent_answers_pool_their_votes():
    out = relabel_group(["0.5", "3", "1/2", "3", r"\frac{1}{2}"], [True] * 5, "r1", ground_truth="1/2")
    assert out.votes == 3 and out.accs == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert out.scores == [2.0, 1.0, 2.0, 1.0, 2.0]  # r1: acc + format
    assert out.agreement == 1.0 and out.majority_ratio == pytest.approx(0.6)


def test_rollouts_without_an_answer_do_not_vote_and_are_wrong():
    out = relabel_group(["", "7", ""], [False, True, False], "simplerl")
    assert out.label == "7" and out.votes == 1
    assert out.accs == [0.0, 1.0, 0.0] and out.scores == [-1.0, 1.0, -1.0]
    assert out.agreement is None  # no true label on the row


def test_no_answer_at_all_gives_no_label_and_the_failure_scores():
    out = relabel_group(["", None], [False, False], "logicrl", ground_truth="4")
    assert out.label is None and out.accs == [0.0, 0.0] and out.scores == [-3.0, -3.0]
    assert out.agreement == 0.0  # a labelled row whose vote produced nothing disagrees


def test_wrong_majority_disagrees_with_the_truth():
    assert relabel_group(["5", "5", "4"], [True] * 3, "r1", ground_truth=4).agreement == 0.0


def test_vote_stats_report_agreement_only_for_labelled_groups():
    stats = VoteStats()
    stats.record(relabel_group(["1", "1"], [True, True], "r1"))
    assert "training/vote/label_agreement" not in stats.metrics()
    stats.record(relabel_group(["2", "3", "2"], [True] * 3, "r1", ground_truth="2"), [1.0, 0.0, 1.0])
    m = stats.metrics()
    assert m["training/vote/groups"] == 2 and m["training/vote/labelled_groups"] == 1
    assert m["training/vote/label_agreement"] == 1.0 and m["training/vote/true_acc"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------ inside verl


@pytest.fixture
def store(monkeypatch):
    fake = FakeTQ()
    patch_tq(monkeypatch, fake)
    return fake


def _vote_group(preds, truth="4", **kw):
    # the reward function scored these rollouts against the (missing) label: acc 0, as TTRL's rollouts arrive
    return Group(
        [Rollout(acc=0.0, pred=p, format_ok=True) for p in preds], data_source="vote", ground_truth=truth, **kw
    )


def _final_scores(store, keys):
    return {k: float(store.values["train"][k]["rm_scores"][-1]) for k in keys}


def test_vote_groups_are_rescored_before_advantages(store):
    cfg = compose_config(BASE)
    sampler = build_sampler(cfg, None)
    submit(store, "v", _vote_group(["4", "4", "5", "4"]))
    plain = Group([Rollout(acc=a) for a in (1.0, 0.0, 0.0, 0.0)])
    submit(store, "m", plain)
    before = {k: store.values["train"][k]["rm_scores"].clone() for k in ("m_0_0", "m_1_0")}

    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)

    # r1 scheme (vote's default): 1 for the majority answer + 1 for the format
    assert _final_scores(store, [f"v_{s}_0" for s in range(4)]) == {
        "v_0_0": 2.0,
        "v_1_0": 2.0,
        "v_2_0": 1.0,
        "v_3_0": 2.0,
    }
    rm = store.values["train"]["v_0_0"]["rm_scores"]
    assert rm.shape == (8,) and float(rm[:-1].abs().sum()) == 0.0  # score on the last token only, as verl stores it
    info = store.values["train"]["v_2_0"]["extra_fields"]["reward_extra_info"]
    assert info["acc"] == 0.0 and info["score"] == 1.0 and info["pred"] == "5"
    assert store.values["train"]["v_0_0"]["extra_fields"]["reward_extra_info"]["acc"] == 1.0
    for key, value in before.items():  # a non-vote group is untouched
        assert torch.equal(store.values["train"][key]["rm_scores"], value)

    assert metrics["training/vote/groups"] == 1
    assert metrics["training/vote/majority_ratio"] == 0.75
    assert metrics["training/vote/pseudo_acc"] == 0.75
    assert metrics["training/vote/label_agreement"] == 1.0
    assert metrics["training/vote/true_acc"] == 0.0  # what the rollouts scored against the real label

    advantages = compute_advantages(cfg, batch, store)  # verl's own PPOTrainer._compute_advantage
    per_key = dict(zip(batch.keys, advantages[:, 0].tolist(), strict=True))
    assert per_key["v_0_0"] > 0 and per_key["v_1_0"] > 0 and per_key["v_3_0"] > 0 and per_key["v_2_0"] < 0
    assert per_key["m_0_0"] > 0 > per_key["m_1_0"]


def test_train_n_keeps_the_first_rollouts_only(store):
    cfg = compose_config([*BASE, f"{KW}.vote.train_n=2"])
    sampler = build_sampler(cfg, None)
    submit(store, "v", _vote_group(["4", "5", "4", "4"]))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert batch.keys == ["v_0_0", "v_1_0"]
    assert not {"v_2_0", "v_3_0"} & store.keys()
    assert metrics["training/vote/dropped_rollouts"] == 2
    assert metrics["training/vote/majority_ratio"] == 0.75  # the vote used all four rollouts


def test_scheme_follows_the_reward_kwargs(store):
    overrides = [
        *BASE,
        "reward.custom_reward_function.path=pkg://reward_fns",
        "+reward.custom_reward_function.reward_kwargs.scheme=simplerl",
    ]
    sampler = build_sampler(compose_config(overrides), None)
    group = _vote_group(["4", "4", "5", ""])
    group.rollouts[3].format_ok = False
    submit(store, "v", group)
    sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    scores = _final_scores(store, [f"v_{s}_0" for s in range(4)])
    assert list(scores.values()) == [1.0, 1.0, -0.5, -1.0]


def test_row_scheme_is_used_without_reward_kwargs(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "5", "5"], extra_info={"index": 0, "scheme": "simplerl"}))
    sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert list(_final_scores(store, ["v_0_0", "v_1_0"]).values()) == [-0.5, 1.0]


def test_unlabelled_rows_log_no_agreement(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "4", "5", "5"], truth=""))
    _, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert metrics["training/vote/labelled_groups"] == 0
    assert "training/vote/label_agreement" not in metrics and "training/vote/true_acc" not in metrics


def test_vote_runs_before_the_acc_filter(store):
    # unanimous votes make every rollout right against the pseudo-label: acc 1.0 -> rejected, refilled
    cfg = compose_config([*BASE, f"{KW}.filters=[acc]"])
    gen = Generator(store, [_vote_group(["4", "4", "5", "5"])])
    sampler = build_sampler(cfg, gen)
    submit(store, "unanimous", _vote_group(["4", "4", "4", "4"]))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert {k.split("_")[0] for k in batch.keys} == {"refill0000"}
    assert metrics["training/group_filter/groups_rejected/acc_too_high"] == 1
    assert metrics["training/vote/groups"] == 1 + sum(gen.calls)  # every generated group was voted on


def test_vote_can_be_disabled(store):
    sampler = build_sampler(compose_config([*BASE, f"{KW}.vote.enable=False"]), None)
    submit(store, "v", _vote_group(["4", "4", "4", "4"]))
    _, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert not any(k.startswith("training/vote") for k in metrics)
    assert _final_scores(store, ["v_0_0"]) == {"v_0_0": 1.0}  # the reward function's original score


def test_rows_without_a_data_source_are_not_voted(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "4", "4", "4"]))
    for key in [f"v_{s}_0" for s in range(4)]:  # a custom dataset without the data_source column
        del store.values["train"][key]["data_source"]
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert len(batch.keys) == 4 and not any(k.startswith("training/vote") for k in metrics)
