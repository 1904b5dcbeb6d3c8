"""AZRTrainer (trainer mode ``azr``) on verl's real composed config: start-up checks, the rows of one step, the
empty-buffer fallback and the checkpointed state. No worker starts here (the e2e run in ``tests/test_e2e.py`` does
the rest for real)."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from _config import compose_verl

from verl_selfplay.azr.advantage import group_of
from verl_selfplay.azr.buffers import Task

PER_TYPE = 3
BASE = [
    "trainer.v1.trainer_mode=azr",
    "algorithm.adv_estimator=task_relative_reinforce_plus_plus",
    "actor_rollout_ref.rollout.n=1",
    f"data.train_batch_size={6 * PER_TYPE}",
    f"actor_rollout_ref.actor.ppo_mini_batch_size={6 * PER_TYPE}",
    "data.max_prompt_length=256",
    "data.max_response_length=96",
    "trainer.total_training_steps=3",
    f"+azr.propose_per_type={PER_TYPE}",
    f"+azr.solve_per_type={PER_TYPE}",
    "+azr.n_references=2",
    "+azr.induction_inputs=4",
    "+azr.induction_visible=2",
    "+azr.prompt_style=compact",
]


def _config(tiny_azr, *extra: str):
    model_dir, data_dir = tiny_azr
    return compose_verl(
        config_name="cpu",
        config_path="pkg://verl_selfplay.config",
        overrides=[
            f"actor_rollout_ref.model.path={model_dir}",
            f"data.train_files={data_dir / 'train.parquet'}",
            f"data.val_files={data_dir / 'test.parquet'}",
            *BASE,
            *extra,
        ],
    )


def _trainer(tiny_azr, *extra: str):
    from verl.trainer.ppo.v1 import get_trainer_cls

    cfg = _config(tiny_azr, *extra)
    trainer = get_trainer_cls("azr")(cfg)
    trainer._init_tokenizer()
    trainer.global_steps = 1
    return trainer


@pytest.mark.parametrize(
    "override, key",
    [
        ("+azr.n_learn=0", "azr.n_learn"),
        ("data.train_batch_size=20", "data.train_batch_size"),
        ("actor_rollout_ref.rollout.n=4", "actor_rollout_ref.rollout.n"),
        ("trainer.total_training_steps=null", "trainer.total_training_steps"),
        ("algorithm.filter_groups.enable=true", "algorithm.filter_groups.enable"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_key(tiny_azr, override, key):
    from verl.trainer.ppo.v1 import get_trainer_cls

    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        get_trainer_cls("azr")(_config(tiny_azr, override))


def test_one_step_holds_every_group_with_uniform_rows_that_fit(tiny_azr):
    trainer = _trainer(tiny_azr)
    rows = trainer.build_rows()
    groups = Counter(group_of(r["uid"]) for r in rows)
    expected = {
        f"{role}.{t}": PER_TYPE for role in ("propose", "solve") for t in ("deduction", "abduction", "induction")
    }
    assert dict(groups) == expected
    assert len({frozenset(r) for r in rows}) == 1  # verl's collate_fn and TransferQueue need the same keys on every row
    assert all(r["agent_name"] == "azr" and "_" not in r["uid"] for r in rows)
    for r in rows:
        tokens = len(trainer.tokenizer.encode(r["raw_prompt"][0]["content"], add_special_tokens=False))
        assert tokens <= 256, r["raw_prompt"]
        if r["azr_role"] == "solve":
            assert r["data_source"] == f"azr_{r['azr_task']}" and r["reward_model"]["ground_truth"]
        else:
            assert r["data_source"] == "azr_propose"
    induction = [r for r in rows if r["azr_role"] == "propose" and r["azr_task"] == "induction"]
    assert all(r["extra_info"]["reference_program"] in r["raw_prompt"][0]["content"] for r in induction)
    # proposer rows of deduction show 2 references from the buffer
    ded = next(r for r in rows if r["azr_role"] == "propose" and r["azr_task"] == "deduction")
    assert ded["raw_prompt"][0]["content"].count("```python") == 2
    batch = trainer._next_train_batch(6 * PER_TYPE)  # verl's collate_fn and TensorDict accept them
    assert len(batch) == 6 * PER_TYPE
    with pytest.raises(RuntimeError, match="refills"):
        trainer._next_train_batch(5)


def test_solver_rows_prefer_tasks_of_the_previous_step(tiny_azr):
    trainer = _trainer(tiny_azr)
    trainer.global_steps = 4
    fresh = Task("abduction", "def f(a):\n    return a * 7", ["2"], ["14"], source="proposed")
    trainer.buffers["abduction"].add(fresh, step=3)
    rows = [r for r in trainer.build_rows() if r["azr_role"] == "solve" and r["azr_task"] == "abduction"]
    assert sum(r["extra_info"]["program"] == fresh.program for r in rows) >= 1


def test_an_empty_buffer_falls_back_to_the_seeds_with_a_warning(tiny_azr, caplog):
    trainer = _trainer(tiny_azr)
    trainer.buffers["deduction"].tasks.clear()
    trainer.buffers["deduction"]._rebuild_index()
    with caplog.at_level(logging.WARNING):
        rows = trainer.build_rows()
    assert "deduction buffer is empty; falling back to the seed tasks" in caplog.text
    assert sum(r["azr_task"] == "deduction" and r["azr_role"] == "solve" for r in rows) == PER_TYPE


def test_checkpointed_state_resumes_the_same_rows(tiny_azr, tmp_path):
    trainer = _trainer(tiny_azr)
    trainer.buffers["deduction"].add(Task("deduction", "def f(a):\n    return -a", ["3"], ["-3"], source="proposed"), 1)
    trainer.save_extra_state(str(tmp_path))
    expected = [(r["azr_role"], r["azr_task"], r["raw_prompt"][0]["content"]) for r in trainer.build_rows()]

    resumed = _trainer(tiny_azr)
    resumed.load_extra_state(str(tmp_path))
    for t in trainer.buffers:
        assert resumed.buffers[t].tasks == trainer.buffers[t].tasks, t
    assert resumed.buffers["deduction"].tasks[-1].program == "def f(a):\n    return -a"
    got = [(r["azr_role"], r["azr_task"], r["raw_prompt"][0]["content"]) for r in resumed.build_rows()]
    assert got == expected  # the buffers and the sampler's random state came back exactly
