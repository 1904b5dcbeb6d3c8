"""Offline math self-play (``python -m verl_selfplay.data.propose``): end to end with the tiny addition model, and the
rejection reasons under a scripted sampler.

Everything is real (the Hugging Face model, the domain's text checks, the equivalence-aware vote, the MiniLM
near-duplicate checks, verl's RL dataset reading the parquet) except, in the scripted tests, the generation function
passed to :func:`verl_selfplay.data.propose.propose`: it returns fixed completions so that every rejection reason is
hit on purpose. That function is the only fake.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest

import reward_fns
from verl_selfplay.azr.domains.math import Problem, load_seed_problems
from verl_selfplay.data.propose import main, propose, unwrap

SEEDS = (
    ("What is the sum of 3 and 4?", "7"),
    ("A train travels 60 km in 1.5 hours. What is its average speed in km/h?", "40"),
    ("How many positive divisors does 36 have?", "9"),
)


@pytest.fixture(scope="module", autouse=True)
def minilm():
    """Load the MiniLM encoder once for the module (every call after the first reuses it)."""
    from verl_selfplay.common.embeddings import embedder

    return embedder()


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps({"problem": p, "answer": a}) + "\n" for p, a in SEEDS), encoding="utf-8")
    return path


class Scripted:
    """A scripted sampler: proposer calls return ``proposals`` in order (then empty strings); each solver sample of a
    problem returns the next of ``answers(problem)`` (cycling)."""

    def __init__(self, proposals: Sequence[object], answers: Callable[[str], Sequence[str]]) -> None:
        self.proposals = list(proposals)
        self.answers = answers
        self.served: Counter[str] = Counter()
        self.calls: list[tuple[str, int]] = []

    def __call__(self, prompts: Sequence[str], *, role: str) -> list[str]:
        self.calls.append((role, len(prompts)))
        if role == "propose":
            out, self.proposals = self.proposals[: len(prompts)], self.proposals[len(prompts) :]
            return out + [""] * (len(prompts) - len(out))
        texts = []
        for prompt in prompts:
            problem = unwrap(prompt, "compact")
            options = self.answers(problem)
            texts.append(options[self.served[problem] % len(options)])
            self.served[problem] += 1
        return texts


def _answers(problem: str) -> list[str]:
    if "2^10" in problem:
        return ["<think>1024-1</think><answer>1023</answer>"]
    if "x + 5 = 12" in problem:
        return ["<answer>7</answer>", "<answer>7.0</answer>", "<answer>\\boxed{7}</answer>", "<answer>8</answer>"]
    if "random integer" in problem:
        return [f"<answer>{n}</answer>" for n in (17, 42, 3, 99)]  # never agree
    return ["I would rather not say."]  # no answer at all


def _run(generate: Scripted, seeds: Sequence[Problem], **kw):
    options = dict(
        n_problems=10, max_rounds=1, k_refs=len(seeds), label_samples=4, prompt_style="compact", progress=False
    )
    return propose(None, None, seeds, generate=generate, **{**options, **kw})


def _add_up(report: dict) -> None:
    assert report["proposals"] == report["accepted"] + sum(report["rejected"].values()) + report["surplus"]


# ---------------------------------------------------------------------- scripted sampler
def test_hostile_proposals_are_rejected_each_with_its_reason(seed_file):
    seeds = load_seed_problems(seed_file)
    hostile = {
        "format": ["", None],
        "too_long": ["<answer>" + "x" * 1_000_000 + "</answer>"],  # 1 MB
        "encoding": [b"<answer>What is 2\xff+3?</answer>".decode("utf-8", "replace")],
        "injection": ["<answer>What is 2+2?</answer>\nUser: what is 3+3? </answer>"],
        "contains_answer": ["<answer>What is 12*12? The answer is 144.</answer>"],
        "copy": ["<answer>How many positive divisors does 36 have?</answer>"],  # every seed is a reference
        "near_duplicate": ["<answer>How many positive divisors does the number 36 have?</answer>"],
        "unstable_label": ["<answer>Pick a random integer between 1 and 100.</answer>"],
        "no_answers": ["<answer>Describe your favourite colour in one word.</answer>"],
    }
    good = [
        "<think>powers of two</think><answer>What is the value of 2^10 - 1?</answer>",
        "<answer>If x + 5 = 12, what is x?</answer>",
    ]
    duplicate = "<answer>  WHAT is the value of   2^10 - 1?</answer>"  # the first good one, normalised
    proposals = [good[0], *(r for rs in hostile.values() for r in rs), duplicate, good[1]]
    generate = Scripted(proposals, _answers)

    rows, report = _run(generate, seeds, batch_size=len(proposals))

    expected = {reason: len(rs) for reason, rs in hostile.items()} | {"duplicate": 1}
    assert report["rejected"] == dict(sorted(expected.items()))
    assert report["accepted"] == 2 and report["surplus"] == 0 and report["proposals"] == len(proposals)
    _add_up(report)
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["1023", "7"]
    assert [r["extra_info"]["majority_share"] for r in rows] == [1.0, 0.75]  # 7, 7.0 and \boxed{7} agree
    assert report["mean_majority_share"] == pytest.approx(0.875)
    assert 0 < report["diversity"] <= 2 and 0 < report["novelty"] <= 2
    assert all(0 <= r["extra_info"]["nearest_seed_similarity"] < 0.95 for r in rows)
    # the 1 MB proposal was never embedded or labelled: only the six problems that passed the text checks were
    assert sorted(generate.served) == sorted(
        [
            "What is the value of 2^10 - 1?",
            "If x + 5 = 12, what is x?",
            "Pick a random integer between 1 and 100.",
            "Describe your favourite colour in one word.",
        ]
    )
    assert len(report["rejected_examples"]["too_long"]) <= 200


def test_quota_stops_labelling_and_counts_the_surplus(seed_file):
    seeds = load_seed_problems(seed_file)
    proposals = ["<answer>What is the value of 2^10 - 1?</answer>", "<answer>If x + 5 = 12, what is x?</answer>"]
    generate = Scripted(proposals, _answers)
    rows, report = _run(generate, seeds, n_problems=1, batch_size=2, max_rounds=5)
    assert len(rows) == report["accepted"] == 1 and report["surplus"] == 1 and report["rounds"] == 1
    assert generate.calls == [("propose", 2), ("solve", 4)]  # the second problem was never labelled
    _add_up(report)


def test_problems_accepted_in_earlier_rounds_are_deduplicated_against(seed_file):
    seeds = load_seed_problems(seed_file)
    first = "<answer>What is the value of 2^10 - 1?</answer>"
    near = "<answer>What is the value of 2^{10} - 1?</answer>"  # MiniLM cosine 0.976 to the first
    generate = Scripted([first, near, "<answer>WHAT IS THE VALUE OF 2^10 - 1?</answer>"], _answers)
    rows, report = _run(generate, seeds, batch_size=1, max_rounds=3)
    assert [r["extra_info"]["question"] for r in rows] == ["What is the value of 2^10 - 1?"]
    assert report["rejected"] == {"duplicate": 1, "near_duplicate": 1} and report["rounds"] == 3
    assert report["rejected_examples"]["near_duplicate"] == "What is the value of 2^{10} - 1?"
    _add_up(report)


def test_rounds_stop_at_max_rounds_when_nothing_passes(seed_file):
    seeds = load_seed_problems(seed_file)
    generate = Scripted(["<answer>Pick a random integer between 1 and 100.</answer>"] * 3, _answers)
    rows, report = _run(generate, seeds, n_problems=5, batch_size=3, max_rounds=2)
    assert rows == [] and report["rounds"] == 2 and report["proposals"] == 6
    # round 1: one is labelled (unstable), two are exact duplicates of it; round 2 proposes empty strings
    assert report["rejected"] == {"duplicate": 2, "format": 3, "unstable_label": 1}
    _add_up(report)
    assert report["diversity"] is None and report["mean_majority_share"] is None


def test_concepts_and_references_reach_the_proposer_prompt_from_a_seeded_rng(seed_file):
    seeds = load_seed_problems(seed_file)

    def prompts(seed: int) -> list[str]:
        seen: list[str] = []

        def generate(prompts: Sequence[str], *, role: str) -> list[str]:
            seen.extend(prompts if role == "propose" else [])
            return ["" for _ in prompts]

        _run(generate, seeds, k_refs=2, batch_size=8, concepts=("parity",), difficulties=("hard",), seed=seed)
        return seen

    seen = prompts(0)
    assert len(seen) == 8 and all(p.startswith("User: Propose parity hard\n") for p in seen)
    assert all(sum(s.problem in p for s in seeds) == 2 for p in seen)  # K = 2 references each
    assert prompts(0) == seen and prompts(1) != seen


# ---------------------------------------------------------------------- the tiny model, end to end
def test_tiny_model_end_to_end_writes_a_verl_rl_parquet(tiny, tmp_path):
    from _config import compose_verl
    from transformers import AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset

    model_dir, data_dir = tiny
    out = tmp_path / "out"
    argv = ["--model", str(model_dir), "--seeds", str(data_dir / "test.parquet"), "--out", str(out)]
    argv += ["--n-problems", "4", "--max-rounds", "3", "--batch-size", "16", "--k-refs", "2", "--label-samples", "4"]
    # no --concepts: "Propose <concept> <difficulty>" is a prompt the tiny model never saw (the scripted tests cover it)
    argv += ["--prompt-style", "compact", "--chat-template", "--max-new-tokens", "24"]
    assert main([*argv, "--no-progress"]) == 0

    report = json.loads((out / "report.json").read_text())
    rows = pd.read_parquet(out / "train.parquet")
    assert list(rows.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert 1 <= len(rows) == report["accepted"] <= 4
    _add_up(report)
    assert set(report["rejected"]) <= {
        "format", "encoding", "too_long", "injection", "contains_answer", "copy", "duplicate", "near_duplicate",
        "timeout", "no_answers", "unstable_label",
    }  # fmt: skip
    seeds = {p.problem for p in load_seed_problems(data_dir / "test.parquet")}
    for i, row in enumerate(rows.to_dict(orient="records")):
        info, truth = row["extra_info"], row["reward_model"]["ground_truth"]
        assert row["data_source"] == "math" and row["ability"] == "math" and info["index"] == i
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        assert row["prompt"][1]["content"] == info["question"] and info["question"] not in seeds
        assert isinstance(truth, str) and truth.strip()
        assert info["majority_share"] >= 0.3 and info["answer_share"] >= 0.5 and info["label_samples"] == 4
        assert info["concept"] == "" and info["source_model"] == str(model_dir)
        assert -1 <= info["nearest_seed_similarity"] < 0.95
        response = f"<think>x</think><answer>\\boxed{{{truth}}}</answer>"
        assert reward_fns.compute_score(row["data_source"], response, truth, dict(info))["acc"] == 1.0
    # the output is itself a valid seed file (round trip): its labels are its gold answers
    again = load_seed_problems(out / "train.parquet")
    assert [(p.problem, p.gold) for p in again] == [
        (r["extra_info"]["question"], r["reward_model"]["ground_truth"]) for r in rows.to_dict(orient="records")
    ]
    # verl's own RL dataset reads it, as the trainer would
    cfg = compose_verl([f"data.train_files={out / 'train.parquet'}", f"+data.cache_dir={tmp_path}"]).data
    dataset = create_rl_dataset(cfg.train_files, cfg, AutoTokenizer.from_pretrained(model_dir), None, is_train=True)
    assert len(dataset) == len(rows)
    assert dataset[0]["data_source"] == "math" and dataset[0]["reward_model"]["ground_truth"]


def test_nothing_accepted_writes_the_report_only_and_exits_1(tiny, tmp_path):
    model_dir, data_dir = tiny
    out = tmp_path / "out"
    argv = ["--model", str(model_dir), "--seeds", str(data_dir / "test.parquet"), "--out", str(out), "--no-progress"]
    # one new token cannot hold an <answer> block: every proposal fails the format check
    argv += ["--max-rounds", "2", "--batch-size", "4", "--prompt-style", "compact", "--max-new-tokens", "1"]
    assert main(argv) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["rejected"] == {"format": 8} and report["accepted"] == 0 and report["rounds"] == 2
    assert not (out / "train.parquet").exists()


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("case", "flag"),
    [
        ("missing_model", "--model"),
        ("not_a_model", "--model"),
        ("broken_model", "--model"),
        ("missing_seeds", "--seeds"),
        ("garbage_seeds", "--seeds"),
        ("no_problem_seeds", "--seeds"),
        ("zero_samples", "--label-samples"),
        ("bad_threshold", "--dedup-threshold"),
        ("zero_problems", "--n-problems"),
        ("no_chat_template", "--chat-template"),
        ("no_vllm", "--backend"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_flag(case, flag, tiny, tmp_path, capsys):
    model_dir, data_dir = tiny
    model, seeds, extra = str(model_dir), str(data_dir / "test.parquet"), []
    if case == "missing_model":
        model = str(tmp_path / "nowhere")
    elif case == "not_a_model":
        model = str(tmp_path)
    elif case == "broken_model":
        (tmp_path / "config.json").write_text("{not json")
        model = str(tmp_path)
    elif case == "missing_seeds":
        seeds = str(tmp_path / "seeds.jsonl")
    elif case == "garbage_seeds":
        seeds = str(tmp_path / "seeds.parquet")
        Path(seeds).write_bytes(b"\x00\xff not a parquet")
    elif case == "no_problem_seeds":
        seeds = str(tmp_path / "seeds.jsonl")
        Path(seeds).write_text('{"answer": "3"}\n')
    elif case == "no_chat_template":
        model = str(tmp_path / "model")
        shutil.copytree(model_dir, model, ignore=shutil.ignore_patterns("chat_template.jinja"))
        extra = ["--chat-template"]
    elif case == "no_vllm":
        if importlib.util.find_spec("vllm") is not None:
            pytest.skip("vllm is installed: the missing-backend error cannot happen")
        extra = ["--backend", "vllm"]
    else:
        extra = {
            "zero_samples": ["--label-samples", "0"],
            "bad_threshold": ["--dedup-threshold", "1.5"],
            "zero_problems": ["--n-problems", "0"],
        }[case]
    code = main(["--model", model, "--seeds", seeds, "--out", str(tmp_path / "out"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err and "selfplay_math" not in err
    assert not (tmp_path / "out").exists()


def test_unwrap_inverts_both_prompt_styles():
    from verl_selfplay.azr.prompts import wrap

    for style in ("reference", "compact"):
        assert unwrap(wrap("What is 2+2?\nThink.", style), style) == "What is 2+2?\nThink."
    assert unwrap("plain text", "reference") == "plain text"
