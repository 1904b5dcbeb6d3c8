"""Majority-vote relabelling (TTRL): the pure vote, and the rewrite inside verl's replay buffer before advantages.

GroupFilterSampler is built by verl's ``PPOTrainer._build_replay_buffer`` from verl's composed config and
reads trajectories in the layout verl's agent loop writes, from the real TransferQueue (started once for this
module), with rewards from ``reward_fns.compute_score`` on each rollout's response text
(``tests/_sampler_harness.py``; only the inference server is scripted). Advantages are computed by verl's own
``PPOTrainer._compute_advantage`` on the batch the sampler returns, which is what proves the re-score happens
before advantages.
"""

from __future__ import annotations

import doctest
import logging

import pytest
from _sampler_harness import (
    Generator,
    Group,
    Rollout,
    build_sampler,
    compose_config,
    compute_advantages,
    patched_store,
    shared_tq,
    submit,
)

from reward_fns.schemes import failure_score
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
    out = relabel_group(["0.5", "3", "1/2", "3", r"\frac{1}{2}"], [True] * 5, "r1", eval_ground_truth="1/2")
    assert out.votes == 3 and out.accs == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert out.scores == [2.0, 1.0, 2.0, 1.0, 2.0]  # r1: acc + format
    assert out.agreement == 1.0 and out.majority_ratio == pytest.approx(0.6)


def test_rollouts_without_an_answer_do_not_vote_and_are_wrong():
    out = relabel_group(["", "7", ""], [False, True, False], "simplerl")
    assert out.label == "7" and out.votes == 1
    assert out.accs == [0.0, 1.0, 0.0] and out.scores == [-1.0, 1.0, -1.0]
    assert out.agreement is None and out.true_accs is None  # no true answer on the row


def test_no_answer_at_all_gives_no_label_and_the_failure_scores():
    out = relabel_group(["", None], [False, False], "logicrl", eval_ground_truth="4")
    assert out.label is None and out.accs == [0.0, 0.0] and out.scores == [-3.0, -3.0]
    assert out.agreement == 0.0  # a labelled row whose vote produced nothing disagrees
    assert out.true_accs == [0.0, 0.0]


def test_wrong_majority_disagrees_with_the_truth_and_rewards_the_majority_only():
    out = relabel_group(["5", "5", "4"], [True] * 3, "r1", eval_ground_truth=4)
    assert out.agreement == 0.0
    assert out.accs == [1.0, 1.0, 0.0] and out.scores == [2.0, 2.0, 1.0]  # the truth never reaches the reward
    assert out.true_accs == [0.0, 0.0, 1.0]


def test_true_accuracy_pools_equivalent_spellings_of_the_truth():
    out = relabel_group(["0.5", r"\frac{1}{2}", "2", ""], [True] * 4, "r1", eval_ground_truth="1/2")
    assert out.true_accs == [1.0, 1.0, 0.0, 0.0]


def test_vote_stats_report_agreement_only_for_labelled_groups():
    stats = VoteStats()
    stats.record(relabel_group(["1", "1"], [True, True], "r1"))
    assert "training/vote/label_agreement" not in stats.metrics()
    stats.record(relabel_group(["2", "3", "2"], [True] * 3, "r1", eval_ground_truth="2"))
    m = stats.metrics()
    assert m["training/vote/groups"] == 2 and m["training/vote/labelled_groups"] == 1
    assert m["training/vote/label_agreement"] == 1.0 and m["training/vote/true_acc"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------ inside verl


@pytest.fixture(scope="module")
def tq():
    return shared_tq()  # Ray + the real TransferQueue, started once per pytest process


@pytest.fixture
def store(tq, monkeypatch):
    with patched_store(monkeypatch, tq) as s:
        yield s


def _vote_group(answers, truth="4", **kw):
    """A ``vote`` row as ``python -m verl_selfplay.data.math --data-source vote`` writes it: no gold to score
    against, the true answer kept for the metrics only; every rollout's reward is then compute_score's."""
    extra_info = {"index": 0, "eval_ground_truth": truth, **kw.pop("extra_info", {})}
    rollouts = [Rollout(answer=a) for a in answers]
    return Group(rollouts, data_source="vote", ground_truth="", extra_info=extra_info, **kw)


def _keys(uid, n, index=0):
    return [f"{uid}_{s}_{index}" for s in range(n)]


def _final_scores(store, keys):
    return [float(t[-1]) for t in store.read(keys, "rm_scores")]


def test_vote_groups_are_rescored_before_advantages(store):
    cfg = compose_config(BASE)
    sampler = build_sampler(cfg, None)
    submit(store, "v", _vote_group(["4", "4", "5", "4"]))
    submit(store, "m", Group([Rollout(answer=a) for a in ("4", "5", "5", "5")]))  # a math group, truth "4"
    before = _final_scores(store, _keys("v", 4)) + _final_scores(store, _keys("m", 4))
    # the reward function had no label for the vote rows: the failure score, and it says why
    assert before == [failure_score("r1")] * 4 + [2.0, 1.0, 1.0, 1.0]

    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)

    # r1 scheme (vote's default): 1 for the majority answer + 1 for the format
    assert _final_scores(store, _keys("v", 4)) == [2.0, 2.0, 1.0, 2.0]
    rm = store.read(["v_0_0"], "rm_scores")[0]
    assert rm.shape == (8,) and float(rm[:-1].abs().sum()) == 0.0  # score on the last token only, as verl stores it
    infos = [f["reward_extra_info"] for f in store.read(_keys("v", 4), "extra_fields")]
    assert [i["acc"] for i in infos] == [1.0, 1.0, 0.0, 1.0] and [i["score"] for i in infos] == [2.0, 2.0, 1.0, 2.0]
    assert infos[2]["pred"] == "5" and all(i["error"] == "" for i in infos)  # relabelled: no "no label" error left
    assert _final_scores(store, _keys("m", 4)) == [2.0, 1.0, 1.0, 1.0]  # a non-vote group is untouched

    assert metrics["training/vote/groups"] == 1
    assert metrics["training/vote/majority_ratio"] == 0.75
    assert metrics["training/vote/pseudo_acc"] == 0.75
    assert metrics["training/vote/label_agreement"] == 1.0
    assert metrics["training/vote/true_acc"] == 0.75  # three of the four answers equal the true answer

    advantages = compute_advantages(cfg, batch, store)  # verl's own PPOTrainer._compute_advantage
    per_key = dict(zip(batch.keys, advantages[:, 0].tolist(), strict=True))
    assert per_key["v_0_0"] > 0 and per_key["v_1_0"] > 0 and per_key["v_3_0"] > 0 and per_key["v_2_0"] < 0
    assert per_key["m_0_0"] > 0 > per_key["m_1_0"]


def test_agreement_reads_the_eval_ground_truth_and_a_wrong_majority_still_wins_the_reward(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["5", "5", "4", "5"], truth="4"))
    _, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _final_scores(store, _keys("v", 4)) == [2.0, 2.0, 1.0, 2.0]  # the truth "4" earns nothing
    assert metrics["training/vote/labelled_groups"] == 1
    assert metrics["training/vote/label_agreement"] == 0.0 and metrics["training/vote/true_acc"] == 0.25


def test_a_gold_answer_in_ground_truth_is_never_the_reward_and_is_reported(store, caplog):
    # a vote row written the old way (gold in reward_model.ground_truth), with relabelling off: the rollouts
    # must not be rewarded against that gold; they get the failure score and an error naming the fix
    sampler = build_sampler(compose_config([*BASE, f"{KW}.vote.enable=False"]), None)
    group = Group([Rollout(answer=a) for a in ("4", "4", "5", "4")], data_source="vote", ground_truth="4")
    submit(store, "v", group)
    sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _final_scores(store, _keys("v", 4)) == [failure_score("r1")] * 4
    info = store.read(["v_0_0"], "extra_fields")[0]["reward_extra_info"]
    assert info["acc"] == 0.0 and "vote relabelling is not on" in info["error"]
    assert "GroupFilterSampler" in info["error"] and "vote.enable=true" in info["error"]

    # with relabelling on, the gold in ground_truth is ignored for the metrics too, and the user is told once
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "w", group)
    submit(store, "x", group)
    with caplog.at_level(logging.WARNING, logger="verl_selfplay.filters.sampler"):
        _, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)
    assert metrics["training/vote/labelled_groups"] == 0 and "training/vote/label_agreement" not in metrics
    warnings = [r for r in caplog.records if "eval_ground_truth" in r.getMessage()]
    assert len(warnings) == 1 and "ignored" in warnings[0].getMessage()


def test_reward_function_without_pred_fails_the_first_step_naming_the_key(store):
    def no_pred(**kw):  # a custom reward function that reports score and accuracy only
        return {"score": 1.0, "acc": 1.0, "format_ok": True}

    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "4", "5", "4"], reward_fn=no_pred))
    with pytest.raises(
        RuntimeError, match=r"report 'pred'.*the reward function's keys: \['acc', 'format_ok', 'score'\]"
    ):
        sampler.sample(global_steps=1, partition_id="train", batch_size=1)


def test_float_reward_function_fails_naming_pred_and_format_ok(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "4"], reward_fn=lambda **kw: 1.0))  # verl stores {"acc": score}
    with pytest.raises(RuntimeError, match=r"report 'pred', 'format_ok'.*keys: \['acc'\]"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=1)


def test_multi_output_sessions_get_the_new_reward_but_keep_their_own_extra_fields(store):
    cfg = compose_config(BASE)
    sampler = build_sampler(cfg, None)
    group = _vote_group(["4", "5", "4"])
    for r in group.rollouts:
        r.outputs = 2  # two agent-loop outputs per session: keys v_{s}_0 and v_{s}_1
    submit(store, "v", group)
    batch, _ = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert sorted(batch.keys) == sorted(_keys("v", 3, 0) + _keys("v", 3, 1))
    for index in (0, 1):
        fields = store.read(_keys("v", 3, index), "extra_fields")
        assert [f["turn_scores"] for f in fields] == [[float(index)]] * 3  # each output's own fields survive
        assert [f["reward_extra_info"]["acc"] for f in fields] == [1.0, 0.0, 1.0]  # the relabelled reward
        assert [f["min_global_steps"] for f in fields] == [1, 1, 1]
        assert _final_scores(store, _keys("v", 3, index)) == [2.0, 1.0, 2.0]


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
    group = _vote_group(["4", "4", "5", None], reward_kwargs={"scheme": "simplerl"})
    group.rollouts[3].formatted = False
    submit(store, "v", group)
    sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _final_scores(store, _keys("v", 4)) == [1.0, 1.0, -0.5, -1.0]


def test_row_scheme_is_used_without_reward_kwargs(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", _vote_group(["4", "5", "5"], extra_info={"scheme": "simplerl"}))
    sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _final_scores(store, _keys("v", 3)) == [-0.5, 1.0, 1.0]


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


def test_rows_without_a_data_source_are_not_voted(store):
    sampler = build_sampler(compose_config(BASE), None)
    submit(store, "v", Group([Rollout(answer="4")] * 4, data_source=None))  # a dataset without the column
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert len(batch.keys) == 4 and not any(k.startswith("training/vote") for k in metrics)
    assert _final_scores(store, _keys("v", 4)) == [2.0] * 4  # the reward function's own scores
