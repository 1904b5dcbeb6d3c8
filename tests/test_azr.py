"""AZR's pure logic: config validation, task buffers, seeds, prompts and proposal judging (sandbox for real)."""

from __future__ import annotations

import json
import random

import pytest

from reward_fns.code.azr import validate_proposal
from verl_selfplay.azr.buffers import Task, TaskBuffer, TaskBuffers
from verl_selfplay.azr.config import AZRConfig
from verl_selfplay.azr.prompts import proposer_prompt, solver_ground_truth, solver_prompt
from verl_selfplay.azr.proposals import evaluate_proposal, proposer_reward, solve_rate
from verl_selfplay.azr.seeds import IDENTITY, seed_tasks, validation_tasks

# ------------------------------------------------------------------------------------------------ config


def test_defaults_follow_the_reference():
    cfg = AZRConfig.from_mapping({})
    assert (cfg.propose_per_type, cfg.solve_per_type, cfg.n_references, cfg.n_learn) == (64, 64, 6, 8)
    assert (cfg.zero_solve_reward, cfg.invalid_reward, cfg.buffer_cap) == (-0.5, -1.0, 16384)
    assert cfg.batch_size == 384


@pytest.mark.parametrize(
    "raw, key",
    [
        ({"n_learn": 0}, "azr.n_learn"),
        ({"n_learn": True}, "azr.n_learn"),
        ({"propose_per_type": "64"}, "azr.propose_per_type"),
        ({"zero_solve_reward": float("nan")}, "azr.zero_solve_reward"),
        ({"timeout": 0}, "azr.timeout"),
        ({"prompt_style": "long"}, "azr.prompt_style"),
        ({"task_types": ["deduction", "deduction"]}, "azr.task_types"),
        ({"task_types": ["prediction"]}, "azr.task_types"),
        ({"induction_visible": 10}, "azr.induction_visible"),
        ({"dedup": "yes"}, "azr.dedup"),
        ({"n_refs": 3}, "azr.n_refs"),
    ],
)
def test_a_bad_azr_value_fails_naming_the_key(raw, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        AZRConfig.from_mapping(raw)


# ------------------------------------------------------------------------------------------------ buffers


def _task(program: str, inp: str = "1", out: str = "1", task_type: str = "deduction") -> Task:
    return Task(task_type, program, [inp], [out])


def test_buffer_deduplicates_by_normalised_program_and_inputs():
    b = TaskBuffer("deduction", cap=10)
    assert b.add(_task("def f(a):\n    return a + 1", "1", "2"), step=1)
    assert not b.add(_task("def f(a):  # a comment\n\n    return (a + 1)", "1", "2"), step=2)  # same AST
    assert not b.add(_task("def f(a):\n    return a + 1", " 1 ", "2"), step=2)  # same input text
    assert b.add(_task("def f(a):\n    return a + 1", "2", "3"), step=2)  # other input
    assert b.add(_task("def f(a):\n    return a + 2", "1", "3"), step=2)  # other program
    assert len(b) == 3 and b.distinct_programs() == 2
    no_dedup = TaskBuffer("deduction", cap=10, dedup=False)
    no_dedup.add(_task(IDENTITY), 1)
    assert no_dedup.add(_task(IDENTITY), 1) and len(no_dedup) == 2


def test_buffer_cap_evicts_the_oldest_proposed_tasks_and_keeps_seeds():
    buffers = TaskBuffers.seeded(["deduction"], {"deduction": [_task(IDENTITY)]}, cap=3, dedup=True)
    b = buffers["deduction"]
    for k in range(5):
        t = _task(f"def f(a):\n    return a + {k}")
        t.source = "proposed"
        b.add(t, step=k + 1)
    assert len(b) == 3
    assert [t.source for t in b.tasks][0] == "seed"
    assert [t.program.split("+ ")[-1] for t in b.tasks[1:]] == ["3", "4"]  # the newest two survive
    assert _task("def f(a):\n    return a + 0") not in b  # an evicted task can be proposed again


def test_references_are_uniform_without_replacement():
    b = TaskBuffer("deduction", cap=100)
    for k in range(10):
        b.add(_task(f"def f(a):\n    return a * {k}"), step=0)
    rng = random.Random(0)
    counts = {t.program: 0 for t in b.tasks}
    for _ in range(2000):
        refs = b.references(6, rng)
        assert len({r.program for r in refs}) == 6
        for r in refs:
            counts[r.program] += 1
    assert all(abs(c / 2000 - 0.6) < 0.06 for c in counts.values()), counts
    assert len(b.references(50, rng)) == 10


def test_solver_tasks_prefer_the_latest_step_then_uniform():
    b = TaskBuffer("deduction", cap=100)
    b.add(_task(IDENTITY), step=0)
    for k in range(3):
        t = _task(f"def f(a):\n    return a - {k}")
        t.source = "proposed"
        b.add(t, step=4)
    new = _task("def f(a):\n    return -a")
    new.source = "proposed"
    b.add(new, step=5)
    chosen = b.for_solver(3, random.Random(1), latest_step=5)
    assert chosen[0].program == "def f(a):\n    return -a"  # the one task of the latest step comes first
    assert len(chosen) == 3
    assert b.for_solver(0, random.Random(1), 5) == []


def test_buffers_round_trip_through_readable_json_lines_exactly(tmp_path):
    buffers = TaskBuffers.seeded(["deduction", "abduction", "induction"], seed_tasks(), cap=50, dedup=True)
    extra = Task(
        "induction", "def f(a):\n    return a * 2", [str(i) for i in range(10)], [str(2 * i) for i in range(10)]
    )
    extra.message, extra.source = "doubles", "proposed"
    buffers["induction"].add(extra, step=7)
    folder = buffers.save(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["abduction.jsonl", "deduction.jsonl", "induction.jsonl"]
    last = json.loads((folder / "induction.jsonl").read_text().splitlines()[-1])
    assert last["program"] == extra.program and last["inputs"][3] == "3" and last["outputs"][3] == "6"
    assert last["message"] == "doubles" and last["step"] == 7

    restored = TaskBuffers.seeded(["deduction", "abduction", "induction"], {}, cap=50, dedup=True)
    assert restored.load(tmp_path)
    for task_type in buffers:
        assert restored[task_type].tasks == buffers[task_type].tasks
    assert extra in restored["induction"]  # the dedup index is rebuilt


def test_a_malformed_buffer_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "deduction.jsonl"
    path.write_text(_task(IDENTITY).to_json() + "\n{not json\n")
    with pytest.raises(ValueError, match=r"deduction\.jsonl:2"):
        TaskBuffer.load(path, "deduction")


# ------------------------------------------------------------------------------------------------ seeds


@pytest.mark.parametrize("which", ["seed", "held_out"])
def test_hand_written_tasks_are_valid_and_their_outputs_are_right(which):
    tasks = seed_tasks() if which == "seed" else validation_tasks()
    assert any(t.program == IDENTITY and t.inputs == ["'Hello world'"] for t in tasks.get("deduction", [])) or (
        which == "held_out"
    )
    for task_type, items in tasks.items():
        assert items, task_type
        for t in items:
            v = validate_proposal(t.program, t.inputs)
            assert v.valid, (t.program, v)
            assert list(v.outputs) == t.outputs, t.program


def test_held_out_tasks_never_overlap_the_seeds():
    seeds = {t.key() for items in seed_tasks().values() for t in items}
    held = {t.key() for items in validation_tasks().values() for t in items}
    assert not seeds & held
    seed_programs = {k[0] for k in seeds}
    assert not seed_programs & {k[0] for k in held}


# ------------------------------------------------------------------------------------------------ prompts


@pytest.mark.parametrize("style", ["reference", "compact"])
def test_prompts_carry_what_each_role_needs(style):
    refs = seed_tasks()["deduction"][:3]
    text = proposer_prompt("deduction", refs, style=style)
    assert text.endswith("Assistant: <think>") and all(r.program in text for r in refs)
    induction = proposer_prompt("induction", refs[:1], num_inputs=4, style=style)
    assert refs[0].program in induction and "4" in induction
    task = seed_tasks()["induction"][0]
    solver = solver_prompt(task, visible=5, style=style)
    assert f"{task.inputs[4]} -> {task.outputs[4]}" in solver and f"{task.inputs[5]} -> " not in solver
    truth, info = solver_ground_truth(task, visible=5)
    assert json.loads(truth) == [[i, o] for i, o in zip(task.inputs[5:], task.outputs[5:], strict=True)]
    assert info["task_type"] == "code_f"


# ------------------------------------------------------------------------------------------------ proposals


def _proposal(program: str, inp: str) -> str:
    return f"<think>ok</think><answer>```python\n{program}\n```\n```input\n{inp}\n```</answer>"


@pytest.mark.parametrize(
    "response, reason",
    [
        ("", "format"),
        ("<think>no answer</think>", "format"),
        ("<answer>```python\ndef f(a): return a\n```</answer>", "format"),  # no input block
        (_proposal("import random\ndef f(a):\n    return random.random()", "1"), "forbidden"),
        (_proposal("import os\ndef f(a):\n    return os.getpid()", "1"), "forbidden"),
        (_proposal("def f(a):\n    while True:\n        pass", "1"), "timeout"),
        (_proposal("def f(a):\n    return a +", "1"), "parse_error"),
        (_proposal("def g(a):\n    return a", "1"), "no_function"),
        (_proposal("def f(a):\n    return a", "__import__('os')"), "bad_input"),
        (_proposal("def f(a):\n    return 'x' * (10 ** 8)", "1"), None),  # gigantic output: memory or output cap
        (_proposal("def f(a):\n    return object()", "1"), "unrepresentable_output"),
        ("x" * 30_000, "too_long"),
    ],
)
def test_bad_proposals_are_rejected_with_a_reason(response, reason):
    outcome = evaluate_proposal("deduction", response, timeout=1.0)
    assert not outcome.valid and outcome.task is None
    if reason is None:
        assert outcome.reason in ("memory", "error", "unrepresentable_output"), outcome
    else:
        assert outcome.reason == reason, outcome


def test_a_valid_proposal_becomes_a_task_with_its_outputs():
    outcome = evaluate_proposal("abduction", _proposal("def f(s):\n    return s * 2", "'ab'"))
    assert outcome.valid and outcome.task == Task("abduction", "def f(s):\n    return s * 2", ["'ab'"], ["'abab'"])
    inputs = "".join(f"```input\n{i}\n```\n" for i in range(4))
    ind = f"<think>.</think><answer>{inputs}```message\nadds one\n```</answer>"
    outcome = evaluate_proposal("induction", ind, "def f(a):\n    return a + 1", num_inputs=4)
    assert outcome.valid and outcome.task.outputs == ["1", "2", "3", "4"] and outcome.task.message == "adds one"
    same = "```input\n1\n```\n" * 4
    dup = f"<think>.</think><answer>{same}```message\nm\n```</answer>"
    assert evaluate_proposal("induction", dup, "def f(a):\n    return a", num_inputs=4).reason == "duplicate_inputs"


def test_solve_rate_scores_attempts_in_the_sandbox():
    task = Task("abduction", "def f(a):\n    return a * 2", ["3"], ["6"])
    answers = ["<think>.</think><answer>3</answer>", "<think>.</think><answer>4</answer>", "no tags", ""]
    assert solve_rate(task, answers) == 0.25
    ded = Task("deduction", "def f(a):\n    return a * 2", ["3"], ["6"])
    assert solve_rate(ded, ["<think>.</think><answer>6</answer>"] * 3) == 1.0
    assert solve_rate(ded, []) == 0.0


@pytest.mark.parametrize(
    "rate, valid, zero, expected",
    [
        (0.25, True, -0.5, 0.75),
        (0.0, True, -0.5, -0.5),
        (1.0, True, -0.5, -0.5),
        (1.0, True, 0.0, 0.0),
        (None, False, -0.5, -1.0),
    ],
)
def test_proposer_reward(rate, valid, zero, expected):
    assert proposer_reward(rate, valid=valid, zero_solve_reward=zero) == expected
