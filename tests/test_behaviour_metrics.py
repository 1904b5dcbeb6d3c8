"""verl_selfplay.behaviours: behaviour/* metrics from the trajectories in the real TransferQueue, in every trainer mode.

The end-to-end runs in tests/test_e2e.py check that verl's trainer logs them; these tests check the values.
"""

from __future__ import annotations

import doctest
import json
import logging
import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from _sampler_harness import PARTITION, Group, Rollout, clear, patched_store, shared_tq, submit
from omegaconf import OmegaConf

import verl_selfplay.behaviours as behaviours

THINKING = "<think>Wait, let me check: 2 + 2 = 4.</think><answer>\\boxed{4}</answer>"  # r1: 2.0
PLAIN = "<think>I add.</think><answer>\\boxed{5}</answer>"  # r1: formatted but wrong, 1.0
TEXTS = [THINKING, PLAIN]


class TableTokenizer:
    """Decodes a response whose first token id is 100 + i to TEXTS[i] (the rollouts here carry such ids)."""

    def batch_decode(self, ids, skip_special_tokens=True):
        assert skip_special_tokens
        return [TEXTS[seq[0] - 100] for seq in ids]


class BrokenTokenizer:
    def batch_decode(self, ids, skip_special_tokens=True):
        raise RuntimeError("tokenizer exploded")


def _rollout(i: int, outputs: int = 1) -> Rollout:
    return Rollout(text=TEXTS[i], tokens=[100 + i, 7, 8], outputs=outputs)


@pytest.fixture(scope="module")
def tq():
    return shared_tq()  # Ray + the real TransferQueue, started once per pytest process


@pytest.fixture
def batch(monkeypatch, tq):
    """Two prompt groups in TransferQueue, one with a two-output session, plus a padding row; verl's batch meta."""
    from transfer_queue import KVBatchMeta

    with patched_store(monkeypatch, tq) as store:
        submit(store, "ua", Group([_rollout(0), _rollout(1)]))
        submit(store, "ub", Group([_rollout(0, outputs=2), _rollout(1)]))
        keys = ["ua_0_0", "ua_1_0", "ub_0_0", "ub_0_1", "ub_1_0", "upad_0_0"]  # verl pads with keys of its own
        tags = [{}, {}, {}, {}, {}, {"is_padding": True}]
        yield KVBatchMeta(partition_id=PARTITION, keys=keys, tags=tags)
        clear(tq)


def _trainer(tokenizer=None, **settings):
    config = OmegaConf.create({"behaviours": settings} if settings else {"trainer": {}})
    return SimpleNamespace(config=config, tokenizer=tokenizer or TableTokenizer())


def test_rates_and_reward_gaps_of_the_trained_batch(batch):
    metrics: dict = {}
    behaviours.add_step_metrics(_trainer(), batch, metrics, global_steps=3)
    assert metrics["behaviour/responses"] == 4  # one per session; padding and the non-final output left out
    assert metrics["behaviour/thinking_words/rate"] == 0.5
    assert metrics["behaviour/verification/rate"] == 0.5
    assert metrics["behaviour/thinking_words/reward_gap"] == pytest.approx(2.0 - 1.0)  # r1 rewards from TQ
    assert metrics["behaviour/backtracking/rate"] == 0.0 and math.isnan(metrics["behaviour/backtracking/reward_gap"])
    assert metrics["behaviour/length_words/mean"] == pytest.approx((10 + 3) / 2)
    assert metrics["behaviour/seconds"] > 0


def test_max_responses_samples_and_enable_false_turns_it_off(batch):
    metrics: dict = {}
    behaviours.add_step_metrics(_trainer(max_responses=3), batch, metrics, global_steps=1)
    assert metrics["behaviour/responses"] == 3
    off: dict = {}
    behaviours.add_step_metrics(_trainer(enable=False), batch, off, global_steps=1)
    assert off == {}


def test_a_failure_while_scoring_is_a_warning_not_a_failed_step(batch, caplog):
    metrics: dict = {"actor/grad_norm": 1.0}
    with caplog.at_level(logging.WARNING, logger="verl_selfplay.behaviours"):
        behaviours.add_step_metrics(_trainer(BrokenTokenizer()), batch, metrics, global_steps=1)
    assert metrics == {"actor/grad_norm": 1.0}
    assert "tokenizer exploded" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"enable": "no"}, "behaviours.enable must be true or false"),
        ({"max_responses": -1}, "behaviours.max_responses must be an integer >= 0"),
        ({"max_respones": 5}, "unknown setting behaviours.max_respones"),
    ],
)
def test_bad_settings_name_the_setting(batch, settings, message):
    with pytest.raises(ValueError, match=message):
        behaviours.add_step_metrics(_trainer(**settings), batch, {}, global_steps=1)


def test_every_trainer_mode_computes_metrics_through_the_wrapped_method():
    code = """
        import json
        import verl
        from verl.trainer.ppo.v1 import get_trainer_cls
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer
        modes = ["sync", "colocate_async", "separate_async", "pcl", "azr"]
        marked = {m: getattr(get_trainer_cls(m)._compute_metrics, "_verl_selfplay_behaviours", False) for m in modes}
        print(json.dumps({"marked": marked, "same": all(get_trainer_cls(m)._compute_metrics is
                          PPOTrainer._compute_metrics for m in modes)}))
    """
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(out["marked"].values()), out
    assert out["same"]


def test_doctests():
    result = doctest.testmod(behaviours, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_reward_fns_doctests():
    import reward_fns.behaviours as pure

    result = doctest.testmod(pure)
    assert result.attempted > 0 and result.failed == 0
