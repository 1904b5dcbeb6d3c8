"""The AZR agent loop through verl's real agent-loop classes, with only the inference server faked.

Real: verl's composed config (CPU preset + ``azr.*``), verl's ``AgentLoopWorker`` (its tokenizer loading, its agent-loop
registry lookup by ``agent_name``, ``hydra.utils.instantiate`` of our registered loop, and its post-processing),
``AgentLoopOutput.as_dict`` (what is stored in TransferQueue), the sandbox and ``reward_fns``.

Faked: the inference server only. :class:`ScriptedServer` implements the one call the loop makes,
``server_manager.generate(request_id, *, prompt_ids, sampling_params) -> TokenOutput``, and answers from a script:
proposer prompts get the proposal under test (valid, invalid, hostile, malformed), solver prompts get scripted answers.

A guard (:mod:`verl_selfplay.azr.guard`, an audit hook armed only inside :func:`guarded`) fails loudly if any code object of model
text (a function ``f`` compiled from a string) is executed in this process, or if model text reaches a subprocess:
all of it must run in the sandbox's own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys

import pytest
from _config import compose_verl

from verl_selfplay.azr.guard import install
from verl_selfplay.azr.prompts import DATA_SOURCES
from verl_selfplay.azr.seeds import seed_tasks

N_LEARN = 4
TEMPERATURE = 0.9


def _proposal(program: str, inp: str) -> str:
    return f"<think>plan</think><answer>```python\n{program}\n```\n```input\n{inp}\n```</answer>"


class ScriptedServer:
    """The inference server, faked: replies by the kind of prompt (see the module docstring)."""

    def __init__(self, tokenizer, proposal: str, solver_answers: list[str], fail_solver: bool = False):
        self.tokenizer = tokenizer
        self.proposal = proposal
        self.solver_answers = list(solver_answers)
        self.fail_solver = fail_solver
        self.calls: list[tuple[str, dict]] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        prompt = self.tokenizer.decode(prompt_ids)
        self.calls.append((prompt, dict(sampling_params)))
        if "Propose" in prompt:
            text = self.proposal
        else:
            if self.fail_solver:
                raise ConnectionError("inference server went away")
            text = self.solver_answers[(len(self.calls) - 2) % len(self.solver_answers)]
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return TokenOutput(
            token_ids=ids, log_probs=[-0.5] * len(ids), extra_fields={"min_global_steps": 1, "max_global_steps": 1}
        )


GUARD = install()


@contextlib.contextmanager
def guarded():
    GUARD.armed, GUARD.violations[:] = True, []
    try:
        yield GUARD
    finally:
        GUARD.armed = False


def test_the_guard_catches_model_text_run_in_process():
    with guarded() as guard, pytest.raises(RuntimeError, match="model text outside the sandbox"):
        exec(compile("def f(a):\n    return a\n", "<string>", "exec"), {})  # noqa: S102 - the positive control
    assert guard.violations == ["exec of model code compiled from <string>"]
    with guarded() as guard, pytest.raises(RuntimeError, match="model text outside the sandbox"):
        subprocess.run([sys.executable, "-c", "def f(a): return a"], check=False)
    assert guard.violations == ["subprocess.Popen with model text in its arguments"]


@pytest.fixture(scope="module")
def worker(tiny):
    """verl's real AgentLoopWorker (no Ray actor: its class used in-process) over the tiny model's tokenizer."""
    import verl.experimental.agent_loop.agent_loop as agent_loop_module
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    model_dir, _ = tiny
    cfg = compose_verl(
        config_name="cpu",
        config_path="pkg://verl_selfplay.config",
        overrides=[
            f"actor_rollout_ref.model.path={model_dir}",
            "data.max_prompt_length=512",
            "data.max_response_length=128",
            f"actor_rollout_ref.rollout.temperature={TEMPERATURE}",
            "+azr.prompt_style=compact",
            f"+azr.n_learn={N_LEARN}",
            "+azr.induction_inputs=4",
            "+azr.induction_visible=2",
            "+azr.timeout=2",
        ],
    )
    assert "azr" in agent_loop_module._agent_loop_registry  # registered by the plugin when verl loaded the module
    return AgentLoopWorker(cfg, llm_client=None)


def _row(role: str, task_type: str, text: str, extra: dict | None = None) -> dict:
    return {
        "raw_prompt": [{"role": "user", "content": text}],
        "azr_role": role,
        "azr_task": task_type,
        "data_source": DATA_SOURCES[task_type] if role == "solve" else "azr_propose",
        "reward_model": {"style": "rule", "ground_truth": ""},
        "extra_info": extra or {"reference_program": ""},
        "uid": f"{role}.{task_type}.0",
        "index": 0,
    }


def _run(worker, server, row) -> tuple:
    from verl_selfplay.azr import agent_loop as azr_loop

    worker.llm_client = server
    captured = {}
    original = azr_loop.AZRAgentLoop.run

    async def spy(self, sampling_params, **kwargs):
        out = await original(self, sampling_params, **kwargs)
        captured["output"] = out
        return out

    azr_loop.AZRAgentLoop.run = spy
    try:
        trajectory = {"step": 1, "sample_index": 0, "rollout_n": 0, "validate": False}
        params = {"temperature": TEMPERATURE, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
        internal = asyncio.run(worker._run_agent_loop(params, trajectory, agent_name="azr", **row))
    finally:
        azr_loop.AZRAgentLoop.run = original
    return captured["output"], internal


def _proposer_prompt(task_type: str = "deduction") -> str:
    from verl_selfplay.azr.prompts import proposer_prompt

    return proposer_prompt(task_type, seed_tasks()["deduction"][:1], num_inputs=4, style="compact")


def test_valid_proposal_gets_one_minus_the_solve_rate_from_fresh_solver_samples(worker):
    right, wrong = "<think>.</think><answer>8</answer>", "<think>.</think><answer>9</answer>"
    server = ScriptedServer(
        worker.tokenizer, _proposal("def f(a):\n    return a + 3", "5"), [right, wrong, wrong, wrong]
    )
    with guarded() as guard:
        out, internal = _run(worker, server, _row("propose", "deduction", _proposer_prompt()))
    assert guard.violations == []
    assert out.reward_score == pytest.approx(0.75)  # s = 1/4
    info = out.extra_fields["azr"]
    assert info["valid"] and info["solve_rate"] == 0.25 and info["reason"] == ""
    task = json.loads(info["task"])
    assert (task["program"], task["inputs"], task["outputs"]) == ("def f(a):\n    return a + 3", ["5"], ["8"])
    # 1 proposal + N_LEARN solver attempts, all at the training temperature, the attempts on the solver prompt
    assert len(server.calls) == 1 + N_LEARN
    assert all(params["temperature"] == TEMPERATURE for _, params in server.calls)
    assert all("Deduce" in prompt and "a + 3" in prompt for prompt, _ in server.calls[1:])
    # verl stores the reward at the last response token, and the reward worker is skipped for this row
    stored = out.as_dict()
    assert float(stored["rm_scores"][-1]) == pytest.approx(0.75) and float(stored["rm_scores"].sum()) == pytest.approx(
        0.75
    )
    assert internal.reward_score == pytest.approx(0.75)
    assert out.extra_fields["reward_extra_info"]["acc"] == 0.25


@pytest.mark.parametrize(
    "answers, zero_reward, expected",
    [(["<think>.</think><answer>8</answer>"], -0.5, -0.5), (["<think>.</think><answer>1</answer>"], -0.5, -0.5)],
)
def test_a_proposal_everyone_or_no_one_solves_gets_the_reference_value(worker, answers, zero_reward, expected):
    server = ScriptedServer(worker.tokenizer, _proposal("def f(a):\n    return a + 3", "5"), answers)
    out, _ = _run(worker, server, _row("propose", "deduction", _proposer_prompt()))
    assert out.reward_score == expected and out.extra_fields["azr"]["solve_rate"] in (0.0, 1.0)


HOSTILE = {
    "fork_bomb": "import os\ndef f(a):\n    while True:\n        os.fork()",
    "kill_parent": "def f(a):\n    import signal\n    __import__('os').kill(__import__('os').getppid(), 9)\n    return a",
    "read_secrets": "def f(a):\n    return open('/etc/shadow').read()",
    "infinite": "def f(a):\n    while True:\n        a += 1",
    "huge_output": "def f(a):\n    return [a] * 10 ** 9",
    "nondeterministic": "def f(a):\n    return id(object())",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_or_invalid_proposals_get_minus_one_and_run_only_in_the_sandbox(worker, name):
    server = ScriptedServer(worker.tokenizer, _proposal(HOSTILE[name], "1"), ["<think>.</think><answer>1</answer>"])
    with guarded() as guard:
        out, _ = _run(worker, server, _row("propose", "abduction", _proposer_prompt("abduction")))
    assert guard.violations == []
    assert out.reward_score == -1.0
    info = out.extra_fields["azr"]
    assert not info["valid"] and info["reason"] and info["task"] is None
    assert len(server.calls) == 1  # no learnability samples for an invalid proposal


@pytest.mark.parametrize(
    "text", ["", "<think>thinking forever", "<answer>no code</answer>", "<answer>```python\ndef f(a): return a\n```"]
)
def test_malformed_proposals_are_a_format_error(worker, text):
    server = ScriptedServer(worker.tokenizer, text, ["x"])
    out, _ = _run(worker, server, _row("propose", "deduction", _proposer_prompt()))
    assert out.reward_score == -1.0 and out.extra_fields["azr"]["reason"] == "format"
    assert out.extra_fields["reward_extra_info"]["format_ok"] is False


def test_an_induction_proposal_writes_inputs_for_the_shown_program(worker):
    from verl_selfplay.azr.prompts import proposer_prompt

    program = "def f(a):\n    return a * 2"
    prompt = proposer_prompt("induction", [seed_tasks()["deduction"][2]], num_inputs=4, style="compact")
    inputs = "".join(f"```input\n{i}\n```\n" for i in (1, 2, 3, 4))
    proposal = f"<think>.</think><answer>{inputs}```message\ndoubling\n```</answer>"
    good = "<think>.</think><answer>```python\ndef f(a):\n    return a * 2\n```</answer>"
    server = ScriptedServer(worker.tokenizer, proposal, [good, "<think>.</think><answer>nope</answer>"])
    out, _ = _run(worker, server, _row("propose", "induction", prompt, {"reference_program": program}))
    task = json.loads(out.extra_fields["azr"]["task"])
    assert task["outputs"] == ["2", "4", "6", "8"] and task["message"] == "doubling"
    assert out.reward_score == pytest.approx(0.5)  # half of the attempts pass the 2 hidden pairs


def test_a_server_failure_during_learnability_is_an_invalid_proposal_not_a_crash(worker):
    server = ScriptedServer(worker.tokenizer, _proposal("def f(a):\n    return a", "1"), ["x"], fail_solver=True)
    out, _ = _run(worker, server, _row("propose", "deduction", _proposer_prompt()))
    assert out.reward_score == -1.0 and out.extra_fields["azr"]["reason"] == "loop_error"


def test_solver_rows_are_left_to_the_reward_worker_and_share_the_proposers_schema(worker):
    import reward_fns
    from verl_selfplay.azr.prompts import solver_ground_truth, solver_prompt

    task = seed_tasks()["abduction"][1]  # def f(a): return a + 3, output 8
    answer = "<think>8 - 3</think><answer>5</answer>"
    server = ScriptedServer(worker.tokenizer, "unused", [answer])
    server.calls.append(("", {}))  # the scripted answers are indexed from the second call
    row = _row("solve", "abduction", solver_prompt(task, style="compact"))
    solver_out, _ = _run(worker, server, row)
    assert solver_out.reward_score is None  # verl's streaming reward worker scores it with the row's data source
    text = worker.tokenizer.decode(solver_out.response_ids, skip_special_tokens=True)
    truth, info = solver_ground_truth(task)
    assert reward_fns.compute_score("azr_abduction", text, truth, info)["score"] == 1.0

    proposer = ScriptedServer(
        worker.tokenizer, _proposal("def f(a):\n    return a", "1"), ["<think>.</think><answer>1</answer>"]
    )
    proposer_out, _ = _run(worker, proposer, _row("propose", "deduction", _proposer_prompt()))
    # TransferQueue keeps only the fields every trajectory has: both roles must store the same top-level fields
    solver_keys = set(solver_out.as_dict()) - {"rm_scores"}
    assert solver_keys == set(proposer_out.as_dict()) - {"rm_scores"}
    assert {"prompts", "responses", "response_mask", "rollout_log_probs", "num_turns", "extra_fields"} <= solver_keys
