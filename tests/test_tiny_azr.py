"""verl_selfplay.tiny --azr: the tiny Absolute Zero model builds, is deterministic, fits the run and runs every path.

The last test samples the built model at temperature 1 and scores it exactly as the AZR loop does, so that the CPU
end-to-end run sees valid and invalid proposals, and right and wrong solver answers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from verl_selfplay import tiny


@pytest.fixture(scope="module")
def azr_dir(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny AZR model (default SFT steps) and its data, built once through the public CLI; and its summary."""
    out = tmp_path_factory.mktemp("tiny_azr")
    cmd = [sys.executable, "-m", "verl_selfplay.tiny", "--azr", "--out", str(out / "model")]
    proc = subprocess.run([*cmd, "--data-out", str(out / "data")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, json.loads(proc.stdout[proc.stdout.index("{") :])


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_tiny_azr_cli_builds_model_and_data(azr_dir):
    import pandas as pd
    from transformers import AutoConfig

    out, summary = azr_dir
    assert summary["mode"] == "azr" and summary["sft_steps"] == tiny.AZR_SFT_STEPS
    assert 50_000 < summary["parameters"] < 400_000 and summary["vocab"] == tiny.AZR_VOCAB_SIZE
    config = AutoConfig.from_pretrained(out / "model")
    assert config.vocab_size == tiny.AZR_VOCAB_SIZE
    assert config.max_position_embeddings == tiny.AZR_MODEL_CONFIG["max_position_embeddings"]
    assert summary["induction_inputs"] == tiny.TINY_AZR_INDUCTION_INPUTS > tiny.TINY_AZR_INDUCTION_VISIBLE
    test = pd.read_parquet(out / "data" / "test.parquet")
    assert set(test.data_source) == {"azr_deduction", "azr_abduction", "azr_induction"}
    assert all(p[0]["content"].startswith("User: ") for p in test.prompt)  # compact style, no chat template
    assert (out / "data" / "train.parquet").is_file()


def test_tiny_azr_is_deterministic_given_a_seed(tmp_path):
    tiny.build_azr(tmp_path / "a", seed=0, sft_steps=3)
    tiny.build_azr(tmp_path / "b", seed=0, sft_steps=3)
    tiny.build_azr(tmp_path / "c", seed=1, sft_steps=3)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_tiny_azr_tokenizer_round_trips(azr_dir):
    out, _ = azr_dir
    tok = tiny.load_tokenizer(out / "model")  # as verl loads it
    assert len(tok) == tiny.AZR_VOCAB_SIZE and tok.eos_token == "<|im_end|>"
    for tag in tiny.R1_TAGS:  # single tokens that survive verl's skip_special_tokens=True decode
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1 and tok.decode(ids, skip_special_tokens=True) == tag
    assert all(len(tok.encode(str(d), add_special_tokens=False)) == 1 for d in range(10))
    examples = tiny.azr_examples(0, per_type=2)
    assert {(ex["role"], ex["task"]) for ex in examples} == set(tiny._AZR_THINK)
    for ex in examples:
        ids = tok.encode(ex["response"], add_special_tokens=False)
        assert tok.decode(ids, skip_special_tokens=True) == ex["response"]
        assert tok.decode(tok.encode(ex["prompt"], add_special_tokens=False)) == ex["prompt"]
    code = tok.encode("def f(a):\n    return a + 3", add_special_tokens=False)
    assert len(code) <= 12  # trained on code: compact


def test_tiny_azr_prompts_fit_the_context(azr_dir):
    import pandas as pd

    out, summary = azr_dir
    tok = tiny.load_tokenizer(out / "model")
    context = tiny.AZR_MODEL_CONFIG["max_position_embeddings"]
    lengths = summary["tokens"]
    assert lengths == tiny.azr_lengths(tok)
    prompts = [v for k, v in lengths.items() if k != "response"]
    assert max(prompts) + 2 * lengths["response"] <= context
    test = pd.read_parquet(out / "data" / "test.parquet")  # the validation rows, tokenised as the agent loop does
    longest = max(len(tok.encode(p[0]["content"], add_special_tokens=False)) for p in test.prompt)
    assert longest + 2 * lengths["response"] <= context


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # model text parsed as Python literals by the scorer
def test_tiny_azr_sampled_proposals_and_answers_are_mixed(azr_dir):
    """At temperature 1 some proposals are valid and some are not, some answers right and some wrong."""
    import torch
    from transformers import AutoModelForCausalLM

    out, _ = azr_dir
    tok = tiny.load_tokenizer(out / "model")
    model = AutoModelForCausalLM.from_pretrained(out / "model").eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = tiny.azr_rates(model, tok, n=32, seed=0)
    finally:
        torch.set_num_threads(threads)
    summary = {k: v.get("valid", v.get("acc")) for k, v in rates.items()}
    for task_type in ("deduction", "abduction", "induction"):
        assert 0.0 < rates[f"propose/{task_type}"]["valid"] < 1.0, summary
        assert 0.0 < rates[f"solve/{task_type}"]["acc"] < 1.0, summary
