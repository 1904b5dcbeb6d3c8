"""Acc, length and repetition filters: the pure logic, and GroupFilterSampler inside verl's replay-buffer path.

The sampler is built by verl's own ``PPOTrainer._build_replay_buffer`` from verl's composed config, and it
reads trajectories written in the exact layout of verl's agent loop to the real TransferQueue (Ray + controller
+ one storage unit, in-process, started once for this module), with rewards from ``reward_fns.compute_score``
on each rollout's response text; only the inference server is scripted (see ``tests/_sampler_harness.py``).
"""

from __future__ import annotations

import doctest
import logging
from collections import Counter
from fractions import Fraction

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
from hypothesis import given, settings
from hypothesis import strategies as st

import reward_fns
from verl_selfplay.filters import acc as acc_filter
from verl_selfplay.filters import length_repetition, pipeline
from verl_selfplay.filters.acc import AccFilter
from verl_selfplay.filters.length_repetition import LengthFilter, RepetitionFilter, repeated_ngram_ratio
from verl_selfplay.filters.pipeline import SamplerOptions, decide_group, refill_prompts

KW = "+trainer.v1.sampler.sampler_kwargs"
SMALL = ["actor_rollout_ref.rollout.n=4", "data.max_response_length=16", "data.train_batch_size=4"]


def _ratio_reference(tokens: list[int], n: int) -> float:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(c for c in counts.values() if c > 1) / len(grams)


# ------------------------------------------------------------------------------------------ pure logic


@pytest.mark.parametrize("module", [acc_filter, length_repetition, pipeline])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=64))
def test_acc_filter_keeps_exactly_the_inclusive_window(values):
    mean = Fraction(int(sum(values)), len(values))  # exact: k correct of n
    verdict = AccFilter(low=0.1, high=0.8).verdict(values)
    expected = "acc_too_low" if mean < Fraction(1, 10) else "acc_too_high" if mean > Fraction(4, 5) else None
    assert verdict == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_metric_is_invalid_not_a_legitimate_rejection(bad):
    assert AccFilter().verdict([bad, 0.0, 0.0]) == "invalid_metric"
    opts = SamplerOptions.from_mapping({"filters": ["acc"]})
    verdict = decide_group(opts, [bad, 1.0], [5, 5])
    assert verdict.reason == "invalid_metric" and verdict.metric_mean != verdict.metric_mean  # NaN: not averaged


def test_acc_filter_bounds_are_inclusive_at_the_paper_values():
    assert AccFilter().verdict([1.0] + [0.0] * 9) is None  # mean 0.1
    assert AccFilter().verdict([1.0] * 4 + [0.0]) is None  # mean 0.8
    assert AccFilter().verdict([0.0] * 11 + [1.0]) == "acc_too_low"  # 0.083
    assert AccFilter().verdict([1.0] * 5 + [0.0]) == "acc_too_high"  # 0.833


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=80), st.integers(1, 6))
def test_repeated_ngram_ratio_matches_counting(tokens, n):
    assert repeated_ngram_ratio(tokens, n) == pytest.approx(_ratio_reference(tokens, n))


def test_repetition_detects_a_loop_but_not_varied_text():
    varied = list(range(200))
    loop = [7, 8, 9, 10] * 50
    assert RepetitionFilter().failures([varied, loop]) == [False, True]


def test_length_filter_flags_truncation_and_explicit_limit():
    assert LengthFilter().failures([15, 16, 3], max_response_length=16) == [False, True, False]
    both = LengthFilter(max_length=10)
    assert both.failures([9, 11, 16], max_response_length=16) == [False, True, True]
    with pytest.raises(ValueError, match="response_length"):
        LengthFilter().failures([3], max_response_length=None)


def test_unknown_filter_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown filter 'lenght'.*valid: acc, length, repetition"):
        SamplerOptions.from_mapping({"filters": ["acc", "lenght"]})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"acc": {"hgih": 0.9}}, "unknown key.*'hgih'.*valid: low, high, metric"),
        ({"filtrs": ["acc"]}, "unknown key.*'filtrs'"),
        ({"filters": ["acc"], "length": {"level": "sample"}}, "length is set but 'length' is not in"),
        ({"filters": ["length"], "length": {"level": "batch"}}, "length.level must be one of sample, group"),
        ({"acc": {"low": 0.9, "high": 0.1}}, r"acc.low \(0.9\) must be <= acc.high"),
        ({"max_extra_gen_rounds": -1}, "max_extra_gen_rounds must be an integer >= 0"),
        ({"on_exhausted": "skip"}, "on_exhausted must be one of partial, error"),
        ({"filters": ["repetition"], "repetition": {"threshold": 2}}, r"threshold must lie in \[0, 1\]"),
        ({"vote": {"train_n": 0}}, "vote.train_n must be a positive integer"),
    ],
)
def test_bad_options_fail_naming_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplerOptions.from_mapping(kwargs)


def test_sample_level_masks_and_all_masked_group_is_dropped():
    opts = SamplerOptions.from_mapping({"filters": ["length"]})
    partly = decide_group(opts, [], [16, 3, 16], max_response_length=16)
    assert partly.keep and partly.masked == {0: "length", 2: "length"}
    fully = decide_group(opts, [], [16, 16], max_response_length=16)
    assert fully.reason == "length"


def test_group_level_drops_the_group_on_one_failure():
    opts = SamplerOptions.from_mapping({"filters": ["length"], "length": {"level": "group"}})
    assert decide_group(opts, [], [3, 16, 4], max_response_length=16).reason == "length"


def test_acc_is_checked_before_reading_tokens():
    opts = SamplerOptions.from_mapping({"filters": ["acc", "repetition"]})
    assert decide_group(opts, [0.0, 0.0], [5, 5]).reason == "acc_too_low"  # final without tokens
    assert decide_group(opts, [1.0, 0.0], [5, 5]).provisional


@given(st.integers(1, 64), st.integers(0, 200), st.integers(0, 200), st.sampled_from([1, 4, 8, 32]))
def test_refill_size_is_bounded_and_chunked(deficit, generated, kept, granularity):
    kept = min(kept, generated)
    n = refill_prompts(deficit, generated, kept, granularity)
    assert n % granularity == 0 and n >= deficit
    assert n <= max(granularity, 4 * deficit + granularity)  # never more than 4x the need, rounded up


# ------------------------------------------------------------------------------------------ inside verl


@pytest.fixture(scope="module")
def tq():
    return shared_tq()  # Ray + the real TransferQueue, started once per pytest process


@pytest.fixture
def store(tq, monkeypatch):
    with patched_store(monkeypatch, tq) as s:
        yield s


def _group(accs, **kw) -> Group:
    """A math group (true answer "4") whose rollouts answer right (acc 1) or wrong (acc 0), per ``accs``."""
    return Group([Rollout(answer="4" if a else "5", **kw) for a in accs])


def _groups(*specs: tuple[float, ...], **kw) -> list[Group]:
    return [_group(accs, **kw) for accs in specs]


def _uids(batch) -> set[str]:
    return {k.split("_")[0] for k in batch.keys}


HALF = (1.0, 1.0, 0.0, 0.0)
ZERO = (0.0, 0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0, 1.0)


def test_acc_filter_refills_until_the_batch_is_full(store):
    cfg = compose_config(SMALL)
    gen = Generator(store, _groups(HALF, ZERO))  # refills keep half of what they generate
    sampler = build_sampler(cfg, gen)
    for i, g in enumerate(_groups(HALF, ZERO, ONE, HALF)):
        submit(store, f"u{i}", g)

    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=4)

    assert gen.calls == [4]  # deficit 2 at keep rate 1/2
    assert _uids(batch) == {"u0", "u3", "refill0000", "refill0002"}
    assert len(batch.keys) == 16 and all(tag["status"] == "success" for tag in batch.tags)
    assert not {"u1_0_0", "u2_0_0", "refill0001_0_0", "refill0003_0_0"} & store.keys()  # rejected: evicted
    assert metrics["training/group_filter/groups_generated"] == 8
    assert metrics["training/group_filter/groups_kept"] == 4
    assert metrics["training/group_filter/groups_rejected/acc_too_low"] == 3
    assert metrics["training/group_filter/groups_rejected/acc_too_high"] == 1
    assert metrics["training/group_filter/groups_rejected/invalid_metric"] == 0  # always reported
    assert metrics["training/group_filter/gen_rounds"] == 2
    assert metrics["training/group_filter/round_cap_hit"] == 0.0
    assert metrics["training/group_filter/group_metric_mean/kept"] == 0.5


def test_surplus_groups_are_discarded_from_transfer_queue(store):
    sampler = build_sampler(compose_config(SMALL), Generator(store, _groups(HALF)))
    for i, g in enumerate(_groups(HALF, HALF, HALF)):
        submit(store, f"u{i}", g)
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)
    assert _uids(batch) == {"u0", "u1"}
    assert not any(k.startswith("u2") for k in store.keys())
    assert metrics["training/group_filter/groups_surplus"] == 1


def test_waits_for_running_groups_before_refilling(store):
    sampler = build_sampler(compose_config(SMALL), Generator(store, _groups(HALF)))
    submit(store, "u0", _group(HALF))
    store.kv_put(key="late", partition_id="train", tag={"is_prompt": True, "status": "running", "global_steps": 1})
    polls = []

    def finish_late(s):
        polls.append(1)
        if len(polls) == 3:  # the rollouts of "late" arrive while the sampler polls
            submit(s, "late", _group(HALF))

    store.on_list = finish_late
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)
    assert _uids(batch) == {"u0", "late"}
    assert metrics["training/group_filter/gen_rounds"] == 1  # no refill while a group was in flight


def test_cap_with_nothing_kept_fails_the_step_clearly(store):
    gen = Generator(store, _groups(ZERO))
    sampler = build_sampler(compose_config([*SMALL, f"{KW}.max_extra_gen_rounds=2"]), gen)
    submit(store, "u0", _group(ZERO))
    with pytest.raises(RuntimeError, match=r"only 0 of 4.*max_extra_gen_rounds.*No group is left to train on"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=4)
    assert len(gen.calls) == 2  # exactly the cap: no infinite loop


def test_cap_with_some_kept_warns_and_trains_on_them(store, caplog):
    gen = Generator(store, _groups(ZERO))
    sampler = build_sampler(compose_config([*SMALL, f"{KW}.max_extra_gen_rounds=1"]), gen)
    submit(store, "u0", _group(HALF))
    with caplog.at_level(logging.WARNING, logger="verl_selfplay.filters.sampler"):
        batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=4)
    assert _uids(batch) == {"u0"}
    assert metrics["training/group_filter/round_cap_hit"] == 1.0
    assert "only 1 of 4" in caplog.text and "max_extra_gen_rounds" in caplog.text


def test_on_exhausted_error_fails_even_with_some_kept(store):
    gen = Generator(store, _groups(ZERO))
    overrides = [*SMALL, f"{KW}.max_extra_gen_rounds=0", f"{KW}.on_exhausted=error"]
    sampler = build_sampler(compose_config(overrides), gen)
    submit(store, "u0", _group(HALF))
    with pytest.raises(RuntimeError, match="only 1 of 4"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=4)
    assert gen.calls == []


def test_sample_level_length_filter_zeroes_the_loss_mask(store):
    overrides = [*SMALL, f"{KW}.filters=[acc,length]", f"{KW}.length.level=sample"]
    sampler = build_sampler(compose_config(overrides), Generator(store, _groups(HALF)))
    rollouts = [Rollout(answer="4", response_len=16), Rollout(answer="4"), Rollout(answer="5"), Rollout(answer="5")]
    submit(store, "u0", Group(rollouts))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert len(batch.keys) == 4
    response_masks = store.read(["u0_0_0", "u0_1_0"], "response_mask")
    loss_masks = store.read(["u0_0_0", "u0_1_0"], "loss_mask")
    assert response_masks[0].numel() == 16 and int(response_masks[0].sum()) == 0 == int(loss_masks[0].sum())
    assert int(response_masks[1].sum()) == 8 and int(loss_masks[1].sum()) == 8  # the others untouched
    assert metrics["training/group_filter/samples_masked/length"] == 1


def test_group_level_repetition_drops_the_group_and_reads_tokens_only_for_survivors(store):
    overrides = [*SMALL, f"{KW}.filters=[acc,repetition]", f"{KW}.repetition.level=group", f"{KW}.repetition.n=2"]
    sampler = build_sampler(compose_config(overrides), Generator(store, _groups(HALF)))
    looping = [Rollout(answer="4", tokens=[5, 6] * 6), Rollout(answer="4"), Rollout(answer="5"), Rollout(answer="5")]
    submit(store, "loop", Group(looping))
    submit(store, "zero", _group(ZERO))
    submit(store, "fine", _group(HALF))
    store.gets.clear()
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=2)
    assert _uids(batch) == {"fine", "refill0000"}
    assert metrics["training/group_filter/groups_rejected/repetition"] == 1
    assert metrics["training/group_filter/groups_rejected/acc_too_low"] == 1
    token_reads = [g for g in store.gets if "responses" in g]
    assert len(token_reads) == 2  # the first round's two acc survivors in one read, then the refill
    assert "zero_0_0" not in store.keys()


def test_all_masked_group_is_dropped_and_refilled(store):
    overrides = [*SMALL, f"{KW}.filters=[length]"]
    gen = Generator(store, _groups(HALF))
    sampler = build_sampler(compose_config(overrides), gen)
    submit(store, "u0", Group([Rollout(response_len=16)] * 4))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _uids(batch) == {"refill0000"}
    assert metrics["training/group_filter/groups_rejected/length"] == 1


def test_failed_group_without_trajectories_is_refilled(store):
    gen = Generator(store, _groups(HALF))
    sampler = build_sampler(compose_config(SMALL), gen)
    submit(store, "broken", Group([], status="failure"))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _uids(batch) == {"refill0000"}
    assert metrics["training/group_filter/groups_rejected/rollout_failure"] == 1


def test_missing_metric_names_the_available_keys(store):
    sampler = build_sampler(compose_config([*SMALL, f"{KW}.acc.metric=accuracy"]), None)
    submit(store, "u0", _group(HALF))
    with pytest.raises(RuntimeError, match=r"lack the acc-filter metric 'accuracy'.*'acc'.*'format_ok'"):
        sampler.sample(global_steps=1, partition_id="train", batch_size=1)


def test_nan_accuracy_is_rejected_as_invalid_metric_with_one_warning(store, caplog):
    def nan_acc(**kw):  # a reward function bug: the accuracy is NaN
        return {**reward_fns.compute_score(**kw), "acc": float("nan")}

    sampler = build_sampler(compose_config(SMALL), Generator(store, _groups(HALF)))
    broken = Group([Rollout(answer="4")] * 4, data_source="gsm8k", reward_fn=nan_acc)
    submit(store, "nan0", broken)
    submit(store, "nan1", broken)
    with caplog.at_level(logging.WARNING, logger="verl_selfplay.filters.sampler"):
        batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _uids(batch) == {"refill0000"}
    assert metrics["training/group_filter/groups_rejected/invalid_metric"] == 2
    assert metrics["training/group_filter/groups_rejected/acc_too_low"] == 0  # never a legitimate rejection
    assert metrics["training/group_filter/group_metric_mean/generated"] == 0.5  # NaN groups are not averaged
    warnings = [r.getMessage() for r in caplog.records if "invalid_metric" in r.getMessage()]
    assert len(warnings) == 1 and "'gsm8k'" in warnings[0] and "'acc'" in warnings[0]


def test_reward_metric_reads_rm_scores(store):
    overrides = [*SMALL, f"{KW}.acc.metric=reward", f"{KW}.acc.low=0.5", f"{KW}.acc.high=1.5"]
    sampler = build_sampler(compose_config(overrides), Generator(store, _groups(HALF)))
    submit(store, "low", Group([Rollout(answer=None, formatted=False)] * 4))  # r1: 0 each
    mid = [Rollout(answer="4"), Rollout(answer="5"), Rollout(answer="5"), Rollout(answer=None, formatted=False)]
    submit(store, "mid", Group(mid))  # r1: 2, 1, 1, 0 -> mean 1.0
    batch, _ = sampler.sample(global_steps=1, partition_id="train", batch_size=1)
    assert _uids(batch) == {"mid"}


def test_unknown_filter_fails_when_verl_builds_the_sampler():
    with pytest.raises(ValueError, match=r"unknown filter 'lenght'.*valid: acc, length, repetition"):
        build_sampler(compose_config([*SMALL, f"{KW}.filters=[acc,lenght]"]), None)


def test_async_trainer_modes_are_rejected_at_start_up():
    with pytest.raises(ValueError, match="synchronously.*trainer_mode='colocate_async'"):
        build_sampler(compose_config(["trainer.v1.trainer_mode=colocate_async"]), None)


def test_validation_partition_uses_verls_sampling(store):
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    sampler = build_sampler(compose_config([*SMALL, f"{KW}.filters=[acc]"]), None)
    store.kv_put(key="v0", partition_id="val", tag={"is_prompt": True, "status": "pending", "global_steps": 0})
    store.kv_batch_put(
        keys=["v0_0_0"],
        partition_id="val",
        fields=list_of_dict_to_tensordict([{"uid": "v0"}]),
        tags=[{"status": "success", "response_len": 3, "global_steps": 0}],
    )
    store.kv_put(key="v0", partition_id="val", tag={"status": "finished"})
    batch, metrics = sampler.sample(global_steps=0, partition_id="val", batch_size=1)
    assert batch.keys == ["v0_0_0"] and not any(k.startswith("training/group_filter") for k in metrics)


def test_relabelled_rewards_and_masks_reach_verls_advantages(store):
    """Evictions, zeroed masks and relabelled rewards land in TransferQueue's storage, and verl's own
    ``_compute_advantage`` reads the relabelled rewards back from it."""
    cfg = compose_config([*SMALL, f"{KW}.filters=[acc,length]", "algorithm.adv_estimator=grpo"])
    gen = Generator(store, _groups(HALF))
    sampler = build_sampler(cfg, gen)
    rollouts = [Rollout(answer="4", response_len=16), Rollout(answer="4"), Rollout(answer="5"), Rollout(answer="5")]
    submit(store, "u0", Group(rollouts))
    submit(store, "u1", _group(ZERO))
    votes = [Rollout(answer=a, response_len=5 + i) for i, a in enumerate(["4", "4", "5", "4"])]
    submit(store, "v", Group(votes, data_source="vote", ground_truth="", extra_info={"eval_ground_truth": "4"}))
    batch, metrics = sampler.sample(global_steps=1, partition_id="train", batch_size=3)

    assert _uids(batch) == {"u0", "v", "refill0000"}
    assert not any(k.startswith("u1") for k in store.keys())  # rejected group evicted
    masks = store.read(["u0_0_0", "u0_1_0"], "loss_mask")
    assert int(masks[0].sum()) == 0 and int(masks[1].sum()) == 8
    rm = store.read([f"v_{s}_0" for s in range(4)], "rm_scores")
    assert [float(t[-1]) for t in rm] == [2.0, 2.0, 1.0, 2.0]
    assert metrics["training/group_filter/samples_masked/length"] == 1
    assert metrics["training/group_filter/gen_rounds"] == 2
    assert metrics["training/vote/label_agreement"] == 1.0

    advantages = compute_advantages(cfg, batch, store)
    per_key = dict(zip(batch.keys, advantages[:, 0].tolist(), strict=True))
    assert per_key["v_0_0"] > 0 > per_key["v_2_0"]
