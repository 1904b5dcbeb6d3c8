"""verl_selfplay.tiny --selfplay-math: the tiny math self-play model builds, is deterministic, speaks the math domain's
prompts, fits the run, and disagrees with itself.

The last test samples the built model at temperature 1 as a math self-play run does, so that the CPU run sees valid
proposals, right and wrong answers, and votes that are neither unanimous nor all split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from verl_selfplay import tiny


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


def test_tiny_math_is_deterministic_given_a_seed(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        tiny.build_selfplay_math(tmp_path / name, seed=seed, sft_steps=3, data_out=tmp_path / name / "data")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert _digest(tmp_path / "a" / "data") != _digest(tmp_path / "c" / "data")


def test_cli_refuses_two_variants_at_once(tmp_path, capsys):
    with pytest.raises(SystemExit):
        tiny.main(["--azr", "--selfplay-math", "--out", str(tmp_path)])
    assert "pick one" in capsys.readouterr().err


def test_examples_use_the_math_domains_own_prompts():
    from types import SimpleNamespace

    from verl_selfplay.azr.domains.math import TASK, MathDomain, Problem

    azr = SimpleNamespace(invalid_reward=-1.0, prompt_style="compact")
    domain = MathDomain(azr, {"seed_file": "unused.jsonl"})
    examples = tiny.math_examples(0, rounds=50)
    assert {ex["role"] for ex in examples} == {"propose", "solve"}
    for ex in examples:
        lines = ex["prompt"].removeprefix("User: ").removesuffix("\nAssistant: <think>").split("\n")
        if ex["role"] == "propose":
            refs = [Problem(t) for t in lines[1:]]
            assert lines[0] == "Propose" and 1 <= len(refs) <= tiny.MATH_MAX_REFERENCES
            assert ex["prompt"] == domain.proposer_prompt(TASK, refs)
            assert ex["response"].startswith(f"{tiny.MATH_PROPOSER_THINK}</think><answer>What is ")
        else:
            assert ex["prompt"] == domain.solver_prompt(Problem(lines[0]))
            a, b = map(int, lines[0].removeprefix("What is ").removesuffix("?").split("+"))
            assert ex["response"] == f"{a}+{b}={a + b}</think><answer>{a + b}</answer>"
    proposed = [ex["response"] for ex in examples if ex["role"] == "propose"]
    assert len(set(proposed)) > len(proposed) // 2  # fresh random problems, not one memorised answer


def test_data_files_are_what_the_math_domain_and_verl_read(tiny_math):
    import pandas as pd

    import reward_fns
    from verl_selfplay.azr.domains.math import TASK, Problem, load_seed_problems, solver_prompt

    _, data = tiny_math
    seeds = load_seed_problems(data / "seeds.jsonl")
    assert len(seeds) == tiny.MATH_SEEDS and all(p.gold and p.label is None for p in seeds)
    assert all(str(eval(p.problem.removeprefix("What is ").rstrip("?"))) == p.gold for p in seeds)  # noqa: S307
    test = pd.read_parquet(data / "test.parquet")
    assert len(test) == tiny.MATH_TEST and set(test.data_source) == {"math"}
    assert set(test.agent_name) == {"azr"} and set(test.azr_role) == {"solve"} and set(test.azr_task) == {TASK}
    assert not {r["problem"] for r in test.extra_info} & {p.problem for p in seeds}  # validation is not a seed
    for row in test.itertuples():
        problem, gold = row.extra_info["problem"], row.reward_model["ground_truth"]
        assert row.prompt[0]["content"] == solver_prompt(Problem(problem), style="compact")
        a, b = map(int, problem.removeprefix("What is ").removesuffix("?").split("+"))
        right = reward_fns.compute_score("math", f"{a}+{b}={gold}</think><answer>{gold}</answer>", gold, {})
        wrong = reward_fns.compute_score("math", f"{a}+{b}=0</think><answer>{a + b + 1}</answer>", gold, {})
        assert (right["score"], right["acc"], wrong["acc"]) == (2.0, 1.0, 0.0)
    assert (data / "train.parquet").is_file()


def test_tokenizer_round_trips_and_prompts_fit(tiny_math):
    model_dir, data = tiny_math
    tok = tiny.load_tokenizer(model_dir)  # as verl loads it
    summary = json.loads((model_dir.parent / "DONE").read_text()[(model_dir.parent / "DONE").read_text().index("{") :])
    assert summary["mode"] == "selfplay_math" and summary["sft_steps"] == tiny.MATH_SFT_STEPS
    for tag in tiny.R1_TAGS:
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids, skip_special_tokens=True) == tag
    for ex in tiny.math_examples(0, rounds=20):
        for text in (ex["prompt"], ex["response"]):
            assert tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True) == text
    lengths = tiny.math_lengths(tok)
    assert lengths == summary["tokens"]
    context = tiny.MATH_MODEL_CONFIG["max_position_embeddings"]
    longest = max(v for k, v in lengths.items() if k != "response")
    assert longest + lengths["response"] <= 64 <= context  # the CPU recipe's max_prompt_length + response fit easily


def test_sampled_model_sometimes_right_and_split(tiny_math):
    """At temperature 1 the proposals are mostly valid and new; answers are right only sometimes; votes spread."""
    import torch
    from transformers import AutoModelForCausalLM

    model_dir, _ = tiny_math
    tok = tiny.load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = tiny.math_rates(model, tok, n=32, votes=8, seed=0)
    finally:
        torch.set_num_threads(threads)
    propose, solve = rates["propose"], rates["solve"]
    assert propose["valid"] >= 0.8 and propose["new"] >= 0.5, propose
    assert 0.2 < solve["acc"] < 0.8, solve
    shares = solve["shares"]
    assert sum(s < 1 for s in shares) >= len(shares) // 2, shares  # the model disagrees with itself often
    assert sum(s >= 0.75 for s in shares) >= 4 and sum(0.3 <= s <= 0.7 for s in shares) >= 4, shares
