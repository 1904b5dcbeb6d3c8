"""reward_fns.behaviours: precision and recall on hand-labelled snippets, bad input, the metrics and the reward term."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import reward_fns
from reward_fns import compute_score
from reward_fns.behaviours import (
    BEHAVIOURS,
    PATTERNS,
    behaviour_metrics,
    language_consistency,
    metric_names,
    reasoning_behaviours,
)

DATA = Path(__file__).parent / "data" / "behaviours.jsonl"
PRECISION_FLOOR = 0.8
RECALL_FLOOR = 0.75


def _rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_labelled_set_is_large_and_covers_every_behaviour_in_both_languages():
    rows = _rows()
    assert len(rows) >= 60
    for key in BEHAVIOURS:
        positives = [r for r in rows if key in r["labels"]]
        assert len(positives) >= 4, key
        if key not in ("language_mixing",):
            assert {r["lang"] for r in positives} >= {"en", "zh"}, key
    assert sum(1 for r in rows if not r["labels"]) >= 10  # negatives, hard ones included


def test_precision_and_recall_per_behaviour(capsys):
    rows = _rows()
    table = []
    misses = []
    for key in BEHAVIOURS:
        tp = fp = fn = 0
        for row in rows:
            got = reasoning_behaviours(row["text"])[key]
            want = key in row["labels"]
            tp += got and want
            fp += got and not want
            fn += want and not got
            if got != want:
                misses.append(f"  {key:18} {'FP' if got else 'FN'} #{row['id']}: {row['text'][:90]!r}")
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        table.append((key, tp + fn, precision, recall))
    with capsys.disabled():
        print(f"\nreasoning_behaviours on {len(rows)} hand-labelled snippets ({DATA.name})")
        print(f"  {'behaviour':18}{'positives':>10}{'precision':>11}{'recall':>8}")
        for key, pos, p, r in table:
            print(f"  {key:18}{pos:>10}{p:>11.2f}{r:>8.2f}")
        print("\n".join(misses))
    for key, _, p, r in table:
        assert p >= PRECISION_FLOOR, (key, p)
        assert r >= RECALL_FLOOR, (key, r)


def test_every_pattern_matches_its_documented_example():
    for key, pats in PATTERNS.items():
        for _, example in pats:
            assert reasoning_behaviours(example)[key], (key, example)


@pytest.mark.parametrize(
    "bad",
    ["", None, 42, b"\x00\x01binary\xff", "\x00\x00\x00", "wait, " * 200_000, bytearray(b"wait"), ["wait"]],
    ids=["empty", "none", "int", "bytes", "nul-text", "1MB", "bytearray", "list"],
)
def test_bad_input_gives_zeros(bad):
    r = reasoning_behaviours(bad)
    assert r["length_words"] == 0
    assert not any(r[k] for k in BEHAVIOURS) and not any(r[f"{k}_count"] for k in BEHAVIOURS)
    assert language_consistency(bad) == 0.0


def test_result_keys_and_types():
    r = reasoning_behaviours("<think>Wait, let me check: 2 + 2 = 4.</think><answer>4</answer>")
    assert set(r) == {*BEHAVIOURS, *(f"{k}_count" for k in BEHAVIOURS), "length_words"}
    assert all(type(r[k]) is bool for k in BEHAVIOURS)
    assert all(type(r[f"{k}_count"]) is int for k in BEHAVIOURS) and type(r["length_words"]) is int


def test_a_behaviour_inside_a_word_does_not_count():
    assert not reasoning_behaviours("Awaiting the bus; hmmm is not a number.")["verification"]
    assert not reasoning_behaviours("Await the result.")["thinking_words"]


def test_repetition_flags_a_loop_not_a_restatement():
    loop = "<think>" + "so x = 3 and then we add 3 to get 6 again " * 10 + "</think>"
    fine = "<think>Knight A says B is a knave. Knight B says A is a knave. So exactly one is a knight.</think>"
    assert reasoning_behaviours(loop)["repetition"] and reasoning_behaviours(loop)["repetition_count"] > 0
    assert not reasoning_behaviours(fine)["repetition"]


def test_language_consistency_and_its_reward_term():
    en = "<think>We add two and three to get five.</think><answer>5</answer>"
    mixed = "<think>我们先求出 x 的值。Then we add three.</think><answer>5</answer>"
    assert language_consistency(en) == 1.0
    assert language_consistency(mixed) == pytest.approx(7 / 11)
    assert language_consistency(mixed, language="en") == pytest.approx(4 / 11)
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        language_consistency(en, language="fr")
    base = compute_score("math", en, "5")["score"]
    assert compute_score("math", en, "5", language_reward=0.5)["score"] == pytest.approx(base + 0.5)
    assert compute_score("math", mixed, "5", language_reward=0.5)["score"] == pytest.approx(base + 0.5 * 7 / 11)
    assert compute_score("math", mixed, "5", language_reward=1.0, language="zh")["score"] == pytest.approx(
        base + 7 / 11
    )
    # every reward_fns key stays, and a bad response still gets a number, not an exception
    r = compute_score("math", b"\x00", "5", language_reward=1.0)
    assert set(r) == set(reward_fns.RESULT_KEYS) and math.isfinite(r["score"])


def test_metrics_rates_gaps_and_undefined_values():
    results = [reasoning_behaviours(t) for t in ("Wait, it is 5.", "It is 4.", "Hmm, so 5.", "So 3.")]
    m = behaviour_metrics(results, rewards=[1.0, 0.0, 1.0, 0.5])
    assert list(m) == metric_names()
    assert m["behaviour/thinking_words/rate"] == 0.5
    assert m["behaviour/thinking_words/reward_gap"] == pytest.approx(1.0 - 0.25)
    assert m["behaviour/verification/rate"] == 0.0 and math.isnan(m["behaviour/verification/reward_gap"])
    assert m["behaviour/length_words/mean"] == pytest.approx((4 + 3 + 3 + 2) / 4)
    assert all(math.isnan(v) for k, v in behaviour_metrics(results, None).items() if k.endswith("reward_gap"))
    assert all(math.isnan(v) for v in behaviour_metrics([], []).values())
    assert math.isnan(behaviour_metrics(results, [1.0, float("nan"), 0.0, 0.0])["behaviour/thinking_words/reward_gap"])
