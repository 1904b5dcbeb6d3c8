"""Data preparation: the three command lines, and their parquet files read back through verl's own RL dataset.

The Knights & Knaves files are loaded by verl's ``create_rl_dataset`` (``RLHFDataset``) with verl's composed
``data`` config, the same call the v1 trainer makes, using a byte-level BPE tokenizer with a ChatML template
that the test trains locally (no hub); verl's own sampler (``create_rl_sampler``) shows that the curriculum
order survives with ``data.shuffle=False``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import reward_fns
from reward_fns.logic import solve
from verl_selfplay.data import get_field
from verl_selfplay.data.prompts import PLAIN_CHAT_TEMPLATE, chat_messages

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"verl_selfplay.data.{module}", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A 400-token byte-level BPE with ChatML specials, trained here on puzzle-like text."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from reward_fns.logic import generate_puzzle

    corpus = [generate_puzzle(n, s).text for n in (3, 5, 7) for s in range(20)] + [
        chat_messages("kk", "")[0]["content"]
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    path = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(path)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def kk_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("kk")
    proc = _cli("knights_knaves", "--out", str(out), "--people", "3-5", "--train", "12", "--test", "6", "--curriculum")
    assert proc.returncode == 0, proc.stderr
    assert "knights_knaves train" in proc.stderr and "100%" in proc.stderr  # tqdm progress
    return out


def _data_config(overrides):
    from _config import compose_verl

    return compose_verl(overrides).data


def test_knights_knaves_rows_are_unique_solvable_and_ordered(kk_dir):
    train = pd.read_parquet(kk_dir / "train.parquet")
    test = pd.read_parquet(kk_dir / "test.parquet")
    assert len(train) == 12 and len(test) == 6
    people = [e["n_people"] for e in train["extra_info"]]
    assert people == sorted(people) and set(people) == {3, 4, 5}  # curriculum: by number of people
    texts = lambda df: {p[-1]["content"] for p in df["prompt"]}  # noqa: E731
    assert not texts(train) & texts(test) and len(texts(train)) == 12
    for _, row in train.iterrows():
        assert row["data_source"] == "knights_knaves"
        gt = row["reward_model"]["ground_truth"]
        assert len(solve(gt["statements"])) == 1  # exactly one solution
        answer = f"<think>reasoning</think><answer>{gt['solution_text_format']}</answer>"
        assert reward_fns.compute_score(row["data_source"], answer, gt, dict(row["extra_info"]))["score"] == 3.0


def test_knights_knaves_loads_through_verls_rl_dataset(kk_dir, tokenizer, tmp_path):
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler

    cfg = _data_config(
        [
            f"data.train_files={kk_dir / 'train.parquet'}",
            "data.shuffle=False",
            "data.filter_overlong_prompts=True",
            "data.max_prompt_length=4096",
            f"+data.cache_dir={tmp_path}",
        ]
    )
    dataset = create_rl_dataset(cfg.train_files, cfg, tokenizer, None, is_train=True)
    assert len(dataset) == 12
    item = dataset[0]
    assert item["data_source"] == "knights_knaves"
    assert [m["role"] for m in item["raw_prompt"]] == ["system", "user"]
    assert "knights and knaves" in item["raw_prompt"][1]["content"]
    assert item["reward_model"]["ground_truth"]["solution_text_format"].startswith("(1) ")
    ids = tokenizer.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=True)
    assert 0 < len(ids) < 4096
    order = [dataset[i]["extra_info"]["n_people"] for i in create_rl_sampler(cfg, dataset)]
    assert order == sorted(order)  # verl's sequential sampler keeps the curriculum

    tight = _data_config(
        [
            f"data.train_files={kk_dir / 'train.parquet'}",
            "data.filter_overlong_prompts=True",
            "data.max_prompt_length=8",
            f"+data.cache_dir={tmp_path}",
        ]
    )
    assert len(create_rl_dataset(tight.train_files, tight, tokenizer, None, is_train=True)) == 0


def test_bad_people_range_is_rejected():
    proc = _cli("knights_knaves", "--out", "/tmp/unused", "--people", "7-3")
    assert proc.returncode != 0 and "empty range" in proc.stderr


def test_math_cli_reports_malformed_rows_and_counts_them(tmp_path):
    rows = [
        {"problem": "What is 1+1?", "answer": "2"},
        {"problem": "   ", "answer": "3"},
        {"problem": "What is 2+2?"},
        {"problem": "What is 3+3?", "answer": 6},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    proc = _cli("math", "--input", str(src), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "row 1 skipped: empty question (key 'problem')" in proc.stderr
    assert "row 2 skipped: missing answer (key 'answer')" in proc.stderr
    assert "row 4 skipped: empty question" in proc.stderr  # the invalid JSON line
    assert "skipped 3 malformed row(s) of 5" in proc.stderr
    out = pd.read_parquet(tmp_path / "out" / "train.parquet")
    assert list(out["reward_model"].map(lambda r: r["ground_truth"])) == ["2", "6"]
    assert [e["source_index"] for e in out["extra_info"]] == [0, 3]
    assert out.iloc[0]["prompt"][-1]["content"] == "What is 1+1?"


def test_math_cli_reads_orz_and_math_layouts(tmp_path):
    orz = [[{"from": "human", "value": "Compute 6*7."}, {"from": "assistant", "ground_truth": {"value": "42"}}]]
    (tmp_path / "orz.json").write_text(json.dumps(orz))
    proc = _cli(
        "math",
        *("--input", str(tmp_path / "orz.json"), "--out", str(tmp_path / "orz")),
        *("--question-key", "0.value", "--answer-key", "1.ground_truth.value", "--template", "simplerl"),
    )
    assert proc.returncode == 0, proc.stderr
    row = pd.read_parquet(tmp_path / "orz" / "train.parquet").iloc[0]
    assert row["reward_model"]["ground_truth"] == "42"
    assert row["prompt"][0]["content"].startswith("Compute 6*7.\nPlease reason step by step")

    math_rows = pd.DataFrame(
        {"problem": ["Simplify 2/4.", "No answer here."], "solution": ["So it is $\\boxed{\\frac{1}{2}}$.", "none"]}
    )
    math_rows.to_parquet(tmp_path / "math.parquet")
    proc = _cli(
        "math", "--input", str(tmp_path / "math.parquet"), "--out", str(tmp_path / "m"), "--solution-key", "solution"
    )
    assert proc.returncode == 0, proc.stderr
    assert "row 1 skipped: no final answer" in proc.stderr
    row = pd.read_parquet(tmp_path / "m" / "train.parquet").iloc[0]
    assert row["reward_model"]["ground_truth"] == "\\frac{1}{2}"
    assert (
        reward_fns.compute_score(
            "math", "<think>x</think><answer>\\boxed{0.5}</answer>", row["reward_model"]["ground_truth"]
        )["acc"]
        == 1.0
    )


def test_math_cli_writes_ttrl_vote_and_test_splits(tmp_path):
    src = tmp_path / "aime.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [{"problem": "p1", "answer": "5"}, {"problem": "p2"}]))
    proc = _cli(
        "math",
        *("--input", str(src), "--out", str(tmp_path / "o"), "--data-source", "vote"),
        *("--test-input", str(src), "--test-data-source", "math"),
    )
    assert proc.returncode == 0, proc.stderr
    train = pd.read_parquet(tmp_path / "o" / "train.parquet")
    test = pd.read_parquet(tmp_path / "o" / "test.parquet")
    assert set(train["data_source"]) == {"vote"} and len(train) == 2  # vote rows need no label
    # and never carry a gold answer a reward function would score against: it is kept for the metrics only
    assert list(train["reward_model"].map(lambda r: r["ground_truth"])) == ["", ""]
    assert [e["eval_ground_truth"] for e in train["extra_info"]] == ["5", ""]
    row = train.iloc[0]
    r = reward_fns.compute_score(
        row["data_source"],
        "<think>x</think><answer>\\boxed{5}</answer>",
        row["reward_model"]["ground_truth"],
        dict(row["extra_info"]),
    )
    assert r["acc"] == 0.0 and "vote relabelling is not on" in r["error"]
    assert set(test["data_source"]) == {"math"} and len(test) == 1  # evaluation rows do
    assert test.iloc[0]["reward_model"]["ground_truth"] == "5"
    assert "row 1 skipped: missing answer" in proc.stderr


def test_vote_label_cli_labels_by_majority(tmp_path):
    rows = [
        {"prompt": "Half of one?", "responses": ["\\boxed{0.5}", "so \\boxed{\\frac{1}{2}}", "\\boxed{2}"]},
        {"prompt": "Split vote?", "responses": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]},
        {"prompt": "No answers", "responses": ["I do not know", "hmm"]},
        {"prompt": "", "responses": ["\\boxed{1}"]},
    ]
    src = tmp_path / "samples.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    proc = _cli("pseudo_label", "--input", str(src), "--out", str(tmp_path / "v"), "--min-ratio", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "row 1 skipped: low agreement: 1/3 votes" in proc.stderr
    assert "row 2 skipped: no answer in any of 2 response(s)" in proc.stderr
    assert "row 3 skipped: empty question" in proc.stderr
    assert "skipped 3 malformed row(s) of 4" in proc.stderr
    out = pd.read_parquet(tmp_path / "v" / "train.parquet")
    assert len(out) == 1
    row = out.iloc[0]
    assert row["reward_model"]["ground_truth"] == "0.5"
    assert row["extra_info"]["vote_count"] == 2 and row["extra_info"]["vote_total"] == 3


def test_vote_label_with_nothing_labelled_fails(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"prompt": "q", "responses": ["none"]}))
    proc = _cli("pseudo_label", "--input", str(src), "--out", str(tmp_path / "v"))
    assert proc.returncode == 1 and "nothing written" in proc.stderr


def test_plain_chat_template_renders_the_r1_zero_layout(tokenizer):
    messages = chat_messages("r1_math", "What is 2+2?")
    text = tokenizer.apply_chat_template(
        messages, chat_template=PLAIN_CHAT_TEMPLATE, add_generation_prompt=True, tokenize=False
    )
    assert text.startswith("A conversation between User and Assistant.")
    assert text.endswith("\nUser: What is 2+2?\nAssistant: <think>")
    assert "<|im_start|>" not in text


def test_get_field_reads_dotted_paths_into_parquet_rows(tmp_path):
    pd.DataFrame({"conv": [[{"v": "q"}, {"g": {"v": "a"}}]]}).to_parquet(tmp_path / "x.parquet")
    row = pd.read_parquet(tmp_path / "x.parquet").to_dict(orient="records")[0]
    assert get_field(row, "conv.0.v") == "q" and get_field(row, "conv.1.g.v") == "a"
    assert get_field(row, "conv.5.v") is None and get_field(row, "missing") is None


@pytest.mark.parametrize("name", ["__init__", "prompts", "knights_knaves", "math", "pseudo_label"])
def test_docstring_examples(name):
    import doctest
    import importlib

    module = importlib.import_module("verl_selfplay.data" if name == "__init__" else f"verl_selfplay.data.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_templates_live_in_one_place():
    # every prompt string of the data modules comes from prompts.py
    for name in ("knights_knaves.py", "math.py", "pseudo_label.py"):
        source = (Path(__file__).parents[1] / "verl_selfplay" / "data" / name).read_text()
        assert "<think>" not in source and "\\boxed{}." not in source
