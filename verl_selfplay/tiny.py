"""A tiny Qwen2 model, tokenizer and addition data set, built locally (no hub), for CPU runs of verl.

``python -m verl_selfplay.tiny --out DIR [--seed 0] [--sft-steps 300] [--data-out DATA_DIR]``

- **Tokenizer**: a 512-token byte-level BPE trained with ``tokenizers`` on the task's own text, with
  ChatML specials (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``) and the R1 tags ``<think>``,
  ``</think>``, ``<answer>``, ``</answer>`` as single, *non-special* tokens (verl decodes responses with
  ``skip_special_tokens=True``, so special tags would vanish before the reward sees them). Digits are
  single byte tokens. The chat template is ChatML.
- **Model**: a random ``Qwen2ForCausalLM`` (hidden 64, 2 layers, about 100k parameters).
- **SFT warm start** (``--sft-steps``, default 200, a few seconds): a short supervised pass on
  single-digit addition ("What is 3+4?" -> ``<think>3+4=7</think><answer>7</answer>``), so that
  the model is right *sometimes*. A purely random model earns reward 0 on every sample, which gives
  GRPO zero advantages and a zero gradient. ``--sft-steps 0`` keeps the random weights.
- **Data** (``--data-out``): ``train.parquet`` / ``test.parquet`` in verl's RLHF format with data
  source ``math``, scored for real by :func:`reward_fns.compute_score` (R1 scheme: 1 for the format
  plus 1 for the right sum).

Everything is deterministic given ``--seed``: the same seed gives byte-identical files.

>>> tokenizer_text = addition_example(3, 4)
>>> tokenizer_text["prompt"], tokenizer_text["response"]
('What is 3+4?', '<think>3+4=7</think><answer>7</answer>')
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

VOCAB_SIZE = 512
R1_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
DATA_SOURCE = "math"  # scored by reward_fns.compute_score -> reward_fns.math (R1 scheme)

# Qwen2-style ChatML; `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX (digits split one by one)
QWEN2_PRETOKENIZE_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

MODEL_CONFIG: dict[str, Any] = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    attn_implementation="sdpa",
)


def addition_example(a: int, b: int) -> dict[str, str]:
    """The prompt, the ideal response and the ground truth of one addition task."""
    return {
        "prompt": f"What is {a}+{b}?",
        "response": f"<think>{a}+{b}={a + b}</think><answer>{a + b}</answer>",
        "ground_truth": str(a + b),
    }


def _all_pairs() -> list[tuple[int, int]]:
    return [(a, b) for a in range(10) for b in range(10)]


def build_tokenizer(seed: int = 0):
    """A 512-token byte-level BPE with ChatML specials and single-token R1 tags (a ``PreTrainedTokenizerFast``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(seed)
    corpus = []
    for a, b in _all_pairs():
        ex = addition_example(a, b)
        corpus.append(f"user\n{ex['prompt']}\nassistant\n{ex['response']}")
    corpus += [" ".join(rng.choice(["what", "is", "the", "answer", "sum", "of", "and", "plus"]) for _ in range(8))] * 4
    tok = Tokenizer(models.BPE(unk_token=None))
    # Qwen2's pre-tokenizer: `AutoTokenizer` loads a qwen2 model's tokenizer as `Qwen2Tokenizer`, which
    # installs exactly this split, so merges learned here are the ones verl's tokenizer applies.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(R1_TAGS),
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.add_tokens(list(R1_TAGS))  # normal tokens: they survive skip_special_tokens=True
    # Fill the vocabulary up to the model's embedding size with reserved specials (as Qwen does), so
    # that every id a random model can sample decodes to something.
    reserved = [f"<|reserved_{i}|>" for i in range(VOCAB_SIZE - len(fast))]
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *reserved]})
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = MODEL_CONFIG["max_position_embeddings"]
    return fast


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer at ``path`` as verl loads it (``AutoTokenizer``)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def build_model(tokenizer, seed: int = 0):
    """A random tiny ``Qwen2ForCausalLM`` whose vocabulary matches ``tokenizer``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    vocab = len(tokenizer)
    if vocab > VOCAB_SIZE:
        raise ValueError(f"tokenizer has {vocab} tokens, more than the model's vocab_size {VOCAB_SIZE}")
    config = Qwen2Config(
        **MODEL_CONFIG,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def _chat_ids(tokenizer, prompt: str) -> list[int]:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
    )


def sft(model, tokenizer, steps: int, seed: int = 0, lr: float = 3e-3, batch_size: int = 32) -> list[float]:
    """Teach ``model`` the addition task for ``steps`` AdamW steps; returns the loss of each step.

    Trains on the response tokens only (prompt tokens are masked), on all 100 digit pairs.
    """
    import torch
    from tqdm import tqdm

    if steps <= 0:
        return []
    rows = []
    for a, b in _all_pairs():
        ex = addition_example(a, b)
        prompt_ids = _chat_ids(tokenizer, ex["prompt"])
        response_ids = tokenizer(ex["response"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((prompt_ids, response_ids))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="tiny SFT", disable=not sys.stderr.isatty(), leave=False):
        idx = torch.randint(len(rows), (batch_size,), generator=gen).tolist()
        batch = [rows[i] for i in idx]
        width = max(len(p) + len(r) for p, r in batch)
        input_ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        attention = torch.zeros((batch_size, width), dtype=torch.long)
        for j, (p, r) in enumerate(batch):
            seq = p + r
            input_ids[j, : len(seq)] = torch.tensor(seq)
            labels[j, len(p) : len(seq)] = torch.tensor(r)
            attention[j, : len(seq)] = 1
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def write_data(out: Path, tokenizer=None, seed: int = 0, train_size: int = 256, test_size: int = 32) -> dict[str, Path]:
    """Write ``train.parquet`` and ``test.parquet`` (verl RLHF format, data source ``math``) into ``out``."""
    import pandas as pd

    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size in (("train", train_size), ("test", test_size)):
        rows = []
        for i in range(size):
            a, b = rng.randrange(10), rng.randrange(10)
            ex = addition_example(a, b)
            rows.append(
                {
                    "data_source": DATA_SOURCE,
                    "prompt": [{"role": "user", "content": ex["prompt"]}],
                    "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": ex["ground_truth"]},
                    "extra_info": {"split": split, "index": i, "a": a, "b": b},
                }
            )
        paths[split] = out / f"{split}.parquet"
        pd.DataFrame(rows).to_parquet(paths[split], index=False)
    return paths


def build(out: str | os.PathLike, seed: int = 0, sft_steps: int = 200, data_out: str | os.PathLike | None = None):
    """Build the tokenizer and model into ``out`` (and the data set into ``data_out``); returns a summary dict."""
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-for-bit determinism on any core count
    try:
        start = time.perf_counter()
        random.seed(seed)
        built = build_tokenizer(seed)
        built.save_pretrained(out)
        tokenizer = load_tokenizer(out)  # what verl will load; SFT must see the same token ids
        sample = addition_example(7, 8)
        messages = [{"role": "user", "content": sample["prompt"]}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if tokenizer(text + sample["response"]).input_ids != built(text + sample["response"]).input_ids:
            raise RuntimeError(
                "tiny tokenizer does not round-trip through AutoTokenizer; check QWEN2_PRETOKENIZE_REGEX"
            )
        model = build_model(tokenizer, seed)
        losses = sft(model, tokenizer, sft_steps, seed=seed)
        model.save_pretrained(out, safe_serialization=True)
    finally:
        torch.set_num_threads(threads)
    summary = {
        "path": str(out),
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(tokenizer),
        "sft_steps": sft_steps,
        "sft_final_loss": round(losses[-1], 4) if losses else None,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if data_out is not None:
        summary["data"] = {k: str(v) for k, v in write_data(Path(data_out), seed=seed).items()}
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.tiny", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for the model and tokenizer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=200, help="addition SFT warm-start steps (0: random)")
    parser.add_argument("--data-out", default=None, help="also write train/test parquet files here")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.out, args.seed, args.sft_steps, args.data_out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
