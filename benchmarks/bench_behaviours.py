r"""Cost of the ``behaviour/*`` metrics against the reward computation of the same batch, same run.

Batch: verl's batch size of the math recipes (``run_promptcot_zero_rl_qwen7b.sh`` and ``run_pcl_qwen3_8b.sh``:
512 prompts x 16 rollouts = 8,192 responses per step), responses generated as in ``bench_math_reward.py`` (long
reasoning texts ending in a boxed answer; about half right), tokenized by a byte-level BPE tokenizer trained here
(4,096 tokens, no download).

Baseline, the reward computation: what verl's ``NaiveRewardManager.run_single`` does for every response -- decode
its token ids, then ``reward_fns.compute_score`` -- in one process (verl spreads it over reward workers and adds a
Ray call per response, so this is the cheapest the reward computation gets).

Ours: what ``verl_selfplay.behaviours`` adds to a step on the driver -- pick the responses
(``behaviours.max_responses``, default 128), decode them, :func:`reward_fns.behaviours.reasoning_behaviours` on
each, the batch metrics. The TransferQueue read of the chosen responses is left out (verl's own
``_compute_metrics`` reads every response of the batch already).

Target (issue 15): under 2 % of the reward computation at the default setting. Also printed: scoring every response
(``max_responses=0``), which is the per-response cost ratio.
The machine is shared and noisy, so the sides take turns chunk by chunk (see ``main``).
Run: ``nice python benchmarks/bench_behaviours.py`` (``--prompts`` and ``--n`` change the size).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import bench_math_reward  # noqa: E402

import reward_fns.math as rmath  # noqa: E402
from reward_fns import compute_score  # noqa: E402
from verl_selfplay.behaviours import DEFAULT_MAX_RESPONSES, score_responses, select_keys  # noqa: E402

CHUNK = 256  # responses timed per turn


def make_tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer (4,096 tokens) trained on ``texts``, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def reward_side(tokenizer, rows, ids) -> float:
    """Seconds for verl's per-response reward computation: decode + compute_score."""
    start = time.perf_counter()
    for (_, _, gold, _), response_ids in zip(rows, ids, strict=True):
        text = tokenizer.decode(response_ids, skip_special_tokens=True)
        compute_score("math", text, gold)
    return time.perf_counter() - start


def behaviour_side(tokenizer, keys, ids_by_key, rewards_by_key, max_responses: int, step: int) -> float:
    """Seconds for one step's behaviour metrics: choose, decode, score, aggregate."""
    start = time.perf_counter()
    chosen = select_keys(keys, [{}] * len(keys), max_responses, seed=step)
    score_responses(tokenizer, [ids_by_key[k] for k in chosen], [rewards_by_key[k] for k in chosen])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=512, help="prompts per step (the math recipes' train batch)")
    ap.add_argument("--n", type=int, default=16, help="rollouts per prompt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    rows, _ = bench_math_reward.make_rows(args.prompts, args.n, args.seed)
    tokenizer = make_tokenizer([r[1] for r in rows[:400]])
    # tuples, as immutable as verl's tensors: lists of 3.8M ints would make each full GC pass a pause of its own
    ids = [tuple(tokenizer(r[1], add_special_tokens=False)["input_ids"]) for r in rows]
    keys = [f"p{i // args.n:05d}_{i % args.n}_0" for i in range(len(rows))]  # verl's {uid}_{session}_{index}
    rewards = {k: float(i % 3 == 0) for i, k in enumerate(keys)}
    ids_by_key = dict(zip(keys, ids, strict=True))
    rmath.warmup()
    reward_side(tokenizer, rows[:32], ids[:32])  # warm code paths (and the imports select_keys makes once)
    behaviour_side(tokenizer, keys, ids_by_key, rewards, DEFAULT_MAX_RESPONSES, step=-1)

    # The machine is shared and noisy: the batch is timed in chunks of CHUNK responses, the sides taking turns
    # (who goes first alternates), so both see the same load. Each chunk also times one step's sampled metrics.
    reward_s = every_s = 0.0
    sampled = []
    for i, lo in enumerate(range(0, len(rows), CHUNK)):
        chunk = slice(lo, lo + CHUNK)
        sides = [
            lambda c=chunk: reward_side(tokenizer, rows[c], ids[c]),
            lambda c=chunk: score_responses(tokenizer, ids[c], [rewards[k] for k in keys[c]]),
            lambda i=i: behaviour_side(tokenizer, keys, ids_by_key, rewards, DEFAULT_MAX_RESPONSES, step=i),
        ]
        order = range(3) if i % 2 == 0 else reversed(range(3))
        seconds = [0.0] * 3
        for j in order:
            start = time.perf_counter()
            sides[j]()
            seconds[j] = time.perf_counter() - start
        reward_s += seconds[0]
        every_s += seconds[1]
        sampled.append(seconds[2])
    sampled_s = statistics.mean(sampled)

    n = len(rows)
    tokens = sum(len(x) for x in ids) / n
    chars = sum(len(r[1]) for r in rows) / n
    print(f"\nbatch: {n} responses = {args.prompts} prompts x {args.n}; mean {chars:.0f} chars, {tokens:.0f} tokens")
    print(f"  {'':62}{'seconds':>10}{'vs reward':>11}")
    print(f"  {'reward computation (decode + compute_score, every response)':62}{reward_s:>10.3f}{'1':>11}")
    label = f"behaviour metrics, max_responses={DEFAULT_MAX_RESPONSES} (default; target < 2%)"
    print(f"  {label:62}{sampled_s:>10.4f}{sampled_s / reward_s:>10.2%}")
    label = "behaviour metrics, max_responses=0 (every response)"
    print(f"  {label:62}{every_s:>10.3f}{every_s / reward_s:>10.2%}")
    print(f"  ({len(sampled)} steps of sampled metrics timed, mean; {os.cpu_count()} CPU cores)")
    return {"reward_s": reward_s, "sampled_s": sampled_s, "every_s": every_s, "ratio": sampled_s / reward_s}


if __name__ == "__main__":
    main()
