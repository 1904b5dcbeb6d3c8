"""AZR prompts for both roles and three task types, and the solver's scoring fields (pure Python).

Every prompt, for both roles, sits in the plain R1 wrapper the reference uses with no chat template (AZR paper
§3.3 and Fig. 34-40; reference ``absolute_zero_reasoner/data_construction/prompts.py``): "A conversation between
User and Assistant ... User: {prompt}\\nAssistant: <think>". The texts below are ours, written after the paper's
descriptions: proposers of deduction and abduction write one program ``f`` plus one input after K reference
snippets; an induction proposer sees one program and writes N inputs plus a message; solvers answer in
``<answer>`` (an output, an input or a program). ``prompt_style="compact"`` keeps only the structure, for the tiny
CPU model whose context is a few hundred tokens.

>>> text = solver_prompt(Task("deduction", "def f(a):\\n    return a", ["1"], ["1"]), style="compact")
>>> text.endswith("Assistant: <think>")
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verl_selfplay.azr.buffers import Task

R1_WRAPPER = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>.\n"
    "User: {prompt}\nAssistant: <think>"
)
COMPACT_WRAPPER = "User: {prompt}\nAssistant: <think>"

DATA_SOURCES = {"deduction": "azr_deduction", "abduction": "azr_abduction", "induction": "azr_induction"}
PROPOSER_DATA_SOURCE = "azr_propose"  # scored in the agent loop (never by the reward worker)

_CODE_RULES = (
    "Rules for the program: define exactly one entry function named `f` with at least one argument, which "
    "returns a value; it must be deterministic (no randomness, no dates or times, no I/O, no printing, no "
    "external state), finish within 10 seconds, and put any imports or helper classes at the top. Give exactly "
    "one input; separate several arguments with commas and quote strings."
)
_FORMAT = (
    "Answer with the program in a ```python``` block and the input in an ```input``` block, both inside "
    "<answer> </answer>:\n```python\ndef f(...):\n    ...\n    return ...\n```\n```input\narg1, arg2\n```"
)


def _snippet(task: Task, with_output: bool = True) -> str:
    parts = [f"```python\n{task.program}\n```", f"```input\n{task.inputs[0]}\n```"]
    if with_output:
        parts.append(f"```output\n{task.outputs[0]}\n```")
    return "\n".join(parts)


def wrap(prompt: str, style: str) -> str:
    """``prompt`` inside the R1 wrapper (``reference``) or its one-line form (``compact``)."""
    return (COMPACT_WRAPPER if style == "compact" else R1_WRAPPER).format(prompt=prompt)


def proposer_prompt(task_type: str, references: Sequence[Task], *, num_inputs: int = 10, style: str) -> str:
    """The proposer prompt of ``task_type`` with its references (K programs; one program for induction)."""
    if task_type == "induction":
        program = references[0].program if references else ""
        if style == "compact":
            return wrap(f"Propose induction {num_inputs}\n```python\n{program}\n```", style)
        body = (
            f"Write {num_inputs} inputs for the program below that produce a diverse set of outputs, and a short "
            "message that helps someone who sees only some input/output pairs to recover the program. Put each "
            "input in its own ```input``` block and the message in a ```message``` block, all inside "
            f"<answer> </answer>.\n```python\n{program}\n```"
        )
        return wrap(body, style)
    refs = "\n\n".join(_snippet(t) for t in references)
    if style == "compact":
        return wrap(f"Propose {task_type}\n{refs}", style)
    goal = (
        "deduce the output from the program and the input"
        if task_type == "deduction"
        else "find an input that produces the given output of the program"
    )
    body = (
        f"Create a new Python program and one input for it, for an I.Q. test in which a test subject must {goal}. "
        "Make it need several reasoning steps and make it clearly different from the reference snippets.\n"
        f"{_CODE_RULES}\n{_FORMAT}\n\nReference snippets:\n{refs}"
    )
    return wrap(body, style)


def solver_prompt(task: Task, *, visible: int = 5, style: str) -> str:
    """The solver prompt of ``task`` (the first ``visible`` input/output pairs shown for induction)."""
    if task.type == "deduction":
        if style == "compact":
            return wrap(f"Deduce\n```python\n{task.program}\n```\n```input\n{task.inputs[0]}\n```", style)
        body = (
            "Predict the exact output of the program for the input. Give the output as a Python literal inside "
            f"<answer> </answer>.\n```python\n{task.program}\n```\n```input\n{task.inputs[0]}\n```"
        )
        return wrap(body, style)
    if task.type == "abduction":
        if style == "compact":
            return wrap(f"Abduce\n```python\n{task.program}\n```\n```output\n{task.outputs[0]}\n```", style)
        body = (
            "Find an input that makes the program return exactly the given output. Give the input as Python "
            "argument text (several arguments separated by commas) inside <answer> </answer>.\n"
            f"```python\n{task.program}\n```\n```output\n{task.outputs[0]}\n```"
        )
        return wrap(body, style)
    pairs = "\n".join(f"{i} -> {o}" for i, o in list(zip(task.inputs, task.outputs, strict=True))[:visible])
    if style == "compact":
        return wrap(f"Induce\n{pairs}", style)
    body = (
        "Write a Python function `f` that maps each input to its output below (inputs are argument text). Its "
        "author left a message. Give the program in a ```python``` block inside <answer> </answer>.\n"
        f"Message: {task.message}\n{pairs}"
    )
    return wrap(body, style)


def solver_ground_truth(task: Task, *, visible: int = 5) -> tuple[str, dict[str, Any]]:
    """``(ground_truth, extra_info)`` for the ``azr_*`` data source that scores a solver answer to ``task``.

    Deduction and abduction: the gold output's ``repr`` (abduction re-executes the program, given in
    ``extra_info``). Induction: the hidden pairs (those after the first ``visible``), as JSON text.
    """
    if task.type == "induction":
        hidden = list(zip(task.inputs, task.outputs, strict=True))[visible:]
        return json.dumps([list(p) for p in hidden]), {"task_type": "code_f", "program": task.program}
    task_code = "code_o" if task.type == "deduction" else "code_i"
    return task.outputs[0], {"task_type": task_code, "program": task.program}
