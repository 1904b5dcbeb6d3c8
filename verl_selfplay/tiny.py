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

**AZR variant** (``--azr``; :func:`build_azr`), for CPU runs of Absolute Zero (:mod:`verl_selfplay.azr`) with
``azr.prompt_style=compact`` (plain-text prompts, no chat template):
``python -m verl_selfplay.tiny --azr --out DIR [--data-out DATA_DIR] [--seed 0] [--sft-steps 300]``

- **Tokenizer**: the same kind of BPE (same specials, R1 tags, Qwen2 split), 512 tokens, trained on AZR text
  (compact prompts and ideal responses), so ``def f(a):\\n    return a + 3`` is 10 tokens.
- **Model**: the same tiny Qwen2 with ``max_position_embeddings=512`` (:data:`AZR_MODEL_CONFIG`).
- **SFT** (:data:`AZR_SFT_STEPS` = 300, about 12-20 s on a loaded 2-core machine): teacher forcing on ideal responses
  of both roles and all three task types (:func:`azr_examples`), over the seed programs and simple variations
  of them (:func:`azr_programs`: ``a + k``, ``s[::-1]``, ``sorted(xs)``, list comprehensions...; the held-out
  validation programs are left out), every output computed in the sandbox. 30% of the solver examples
  (:data:`AZR_SEED_SHARE`) are the seed tasks themselves: a 100k-parameter model does not learn to copy or
  compute in seconds, but it learns these answers, so the run's first solver tasks are solved sometimes.
- **Data** (``--data-out``): :func:`verl_selfplay.azr.data.write` with ``style="compact"``.
- **Run settings**: ``azr.induction_inputs`` = :data:`TINY_AZR_INDUCTION_INPUTS` (4),
  ``azr.induction_visible`` = :data:`TINY_AZR_INDUCTION_VISIBLE` (2); the build's summary lists the longest
  prompts and response in tokens (:func:`azr_lengths`: 65 / 117 for a proposer with 1 / 2 references, 119 for a
  solver, 77 for a response).

Measured with :func:`azr_rates` (seed 0, 32 samples per role and type at temperature 1, scored as the AZR loop
scores them): valid proposals 69% deduction, 81% abduction, 34% induction (rejections: format, parse errors,
bad inputs, runtime errors, duplicate inputs); solver accuracy on the seed tasks 19% deduction, 16% abduction,
53% induction; on fresh tasks of the SFT families 3% deduction, 14% abduction; on the held-out validation tasks
3% / 6% / 0%.

**Math self-play variant** (``--selfplay-math``; :func:`build_selfplay_math`), for CPU runs of math self-play
(``azr.domain=math``, :mod:`verl_selfplay.azr.domains.math`) with ``azr.prompt_style=compact``:
``python -m verl_selfplay.tiny --selfplay-math --out DIR [--data-out DATA_DIR] [--seed 0] [--sft-steps 500]``

- **Prompts**: exactly the math domain's compact ones, plain text: ``User: Propose\nWhat is 3+4?\nAssistant:
  <think>`` (1 to 3 references) and ``User: What is 3+4?\nAssistant: <think>``. Problems are additions
  ``What is a+b?`` of single digits, a quarter with a first operand of 10-19 (:func:`math_problem`).
- **Tokenizer / model**: the same BPE (trained on these examples) and tiny Qwen2 as the addition model
  (:data:`MATH_MODEL_CONFIG`); the longest prompt (3 references) is 32 tokens, a response 15.
- **SFT** (:data:`MATH_SFT_STEPS` = 500, 45 s on a loaded 2-core machine): both roles (:func:`math_examples`),
  solver ``a+b=c</think><answer>c</answer>``, proposer ``a new sum</think><answer>What is x+y?</answer>`` with
  fresh random ``x``, ``y``, so proposals are mostly new, valid problems.
- **Data** (``--data-out``, :func:`write_math_data`): ``seeds.jsonl`` (48 problems with ``problem`` and ``answer``,
  for ``selfplay_math.seed_file``), ``test.parquet`` (32 other problems, compact solver rows of the ``azr`` agent
  loop scored by data source ``math`` against the gold: ``val-core/math/acc/mean@1``), ``train.parquet``
  (placeholder: verl needs ``data.train_files``, self-play never draws from it).

Measured with :func:`math_rates` (seed 0, temperature 1; 32 proposals on 2 seed references, 8 answers to each of
32 seed problems): 100% of the proposals pass the text checks, 75% of them are not seed problems; the solver is
right 49% of the time; the majority shares ``s`` of the 32 votes range from 0.25 to 1 (two 0.25, six 0.375, eight
0.5, two 0.625, five 0.75, seven 0.875, two 1.0: the model disagrees with itself on 94% of the problems), and the
vote label is the gold answer on 59% of them. With fewer steps the solver is right too rarely (100 steps: 4%,
200: 12%, 400: 31%); with more, too often for informative votes (600: 86%, two thirds of the problems at s >= 7/8).

>>> tokenizer_text = addition_example(3, 4)
>>> tokenizer_text["prompt"], tokenizer_text["response"]
('What is 3+4?', '<think>3+4=7</think><answer>7</answer>')
"""

from __future__ import annotations

import argparse
import json
import math
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


def _addition_corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    corpus = []
    for a, b in _all_pairs():
        ex = addition_example(a, b)
        corpus.append(f"user\n{ex['prompt']}\nassistant\n{ex['response']}")
    corpus += [" ".join(rng.choice(["what", "is", "the", "answer", "sum", "of", "and", "plus"]) for _ in range(8))] * 4
    return corpus


def build_tokenizer(
    seed: int = 0, corpus: list[str] | None = None, vocab_size: int = VOCAB_SIZE, max_length: int | None = None
):
    """A byte-level BPE with ChatML specials and single-token R1 tags (a ``PreTrainedTokenizerFast``).

    Trained on ``corpus`` (default: the addition text) to ``vocab_size`` tokens (default 512), padded with
    reserved specials; ``max_length`` (default: the addition model's context) becomes ``model_max_length``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if corpus is None:
        corpus = _addition_corpus(seed)
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
        vocab_size=vocab_size - len(R1_TAGS),
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
    reserved = [f"<|reserved_{i}|>" for i in range(vocab_size - len(fast))]
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", *reserved]})
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = max_length or MODEL_CONFIG["max_position_embeddings"]
    return fast


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer at ``path`` as verl loads it (``AutoTokenizer``)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def build_model(tokenizer, seed: int = 0, config: dict[str, Any] | None = None):
    """A random tiny ``Qwen2ForCausalLM`` whose vocabulary matches ``tokenizer`` (``config``: :data:`MODEL_CONFIG`)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = config or MODEL_CONFIG
    vocab = len(tokenizer)
    if vocab > config["vocab_size"]:
        raise ValueError(f"tokenizer has {vocab} tokens, more than the model's vocab_size {config['vocab_size']}")
    config = Qwen2Config(
        **config,
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
    if steps <= 0:
        return []
    rows = []
    for a, b in _all_pairs():
        ex = addition_example(a, b)
        prompt_ids = _chat_ids(tokenizer, ex["prompt"])
        response_ids = tokenizer(ex["response"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append((prompt_ids, response_ids))
    return _teacher_force(model, tokenizer, rows, steps, seed, lr, batch_size, "tiny SFT")


def _teacher_force(
    model,
    tokenizer,
    rows: list[tuple[list[int], list[int]]],
    steps: int,
    seed: int,
    lr: float,
    batch_size: int,
    desc: str,
    warmup: int = 0,
) -> list[float]:
    """``steps`` AdamW steps on batches drawn uniformly from ``rows`` (prompt ids, response ids); loss on responses.

    ``warmup`` > 0: the learning rate rises linearly over ``warmup`` steps, then decays (cosine) to a tenth.
    """
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = None
    if warmup > 0:

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

        schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc=desc, disable=not sys.stderr.isatty(), leave=False):
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
        if schedule is not None:
            schedule.step()
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


# ---------------------------------------------------------------------------------------------------- AZR
# The tiny model of the CPU Absolute Zero run (`--azr`): compact prompts of verl_selfplay.azr.prompts, plain text.
AZR_STYLE = "compact"
AZR_VOCAB_SIZE = 512
AZR_MODEL_CONFIG: dict[str, Any] = {**MODEL_CONFIG, "vocab_size": AZR_VOCAB_SIZE, "max_position_embeddings": 512}
AZR_SFT_STEPS = 300  # measured: 12-20 s of SFT on a loaded 2-core machine; its rates are in the docstring
TINY_AZR_INDUCTION_INPUTS = 4  # azr.induction_inputs of the tiny run (the reference's 10 are too long here)
TINY_AZR_INDUCTION_VISIBLE = 2  # azr.induction_visible of the tiny run (< TINY_AZR_INDUCTION_INPUTS)

# Program families: (argument kind, body template with {k}, induction message). Argument names follow the kind
# (`a`: int, `s`: str, `xs`: list of ints, `a, b`: two ints), so the kind is visible in the program text.
_AZR_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("int", "a + {k}", "It adds a number."),
    ("int", "a - {k}", "It subtracts a number."),
    ("int", "a * {k}", "It multiplies by a number."),
    ("int", "a % {k}", "It takes a remainder."),
    ("int", "a // {k}", "It divides by a number."),
    ("int", "-a", "It flips the sign."),
    ("int2", "a + b", "It combines the two numbers."),
    ("int2", "a - b", "It combines the two numbers."),
    ("int2", "a * b", "It combines the two numbers."),
    ("int2", "max(a, b)", "It picks one of the two numbers."),
    ("str", "s[::-1]", "It rearranges the characters."),
    ("str", "s.upper()", "It changes the case."),
    ("str", "s.lower()", "It changes the case."),
    ("str", "len(s)", "It counts the characters."),
    ("str", "s * {k}", "It repeats the string."),
    ("str", "s[0]", "It picks one character."),
    ("list", "sorted(xs)", "It orders the list."),
    ("list", "sum(xs)", "It adds up the list."),
    ("list", "max(xs)", "It picks one element."),
    ("list", "xs[::-1]", "It rearranges the list."),
    ("list", "[x + {k} for x in xs]", "It changes every element."),
    ("list", "[x * {k} for x in xs]", "It changes every element."),
    ("list", "[x for x in xs if x % 2 == 0]", "It keeps some elements."),
    ("list", "[x for x in xs if x > {k}]", "It keeps some elements."),
)
AZR_SEED_SHARE = 0.3  # share of solver examples that are the seed tasks themselves (a run's first tasks)
_AZR_MIX = {"propose": 1, "solve": 3}  # examples per role and task type in each round of azr_examples
_AZR_ARGS = {"int": "a", "int2": "a, b", "str": "s", "list": "xs"}
_AZR_THINK = {
    ("propose", "deduction"): "a new program",
    ("propose", "abduction"): "a new program",
    ("propose", "induction"): "varied inputs",
    ("solve", "deduction"): "run f",
    ("solve", "abduction"): "invert f",
    ("solve", "induction"): "fit the pairs",
}


def _azr_random_input(kind: str, rng: random.Random) -> str:
    if kind == "int":
        return str(rng.randint(-2, 12))
    if kind == "int2":
        return f"{rng.randint(-2, 12)}, {rng.randint(-2, 12)}"
    if kind == "str":
        return repr("".join(rng.choice("abcdehiloxyz") for _ in range(rng.randint(1, 4))))
    return repr([rng.randint(0, 9) for _ in range(rng.randint(1, 4))])


def azr_programs() -> list[tuple[str, str, str]]:
    """``(program, argument kind, induction message)`` of every SFT program: the families above, several ``k``.

    The held-out validation programs (:func:`verl_selfplay.azr.seeds.validation_tasks`) are left out, so the
    validation set stays unseen.

    >>> programs = azr_programs()
    >>> programs[0]
    ('def f(a):\\n    return a + 1', 'int', 'It adds a number.')
    >>> any(p == "def f(s):\\n    return s + s" for p, _, _ in programs)
    False
    """
    from verl_selfplay.azr.seeds import validation_tasks

    held_out = {t.program for tasks in validation_tasks().values() for t in tasks}
    out = []
    for kind, body, message in _AZR_FAMILIES:
        ks = [2, 3] if "s *" in body else range(2, 8) if "%" in body or "//" in body else range(1, 10)
        for k in ks if "{k}" in body else [None]:
            program = f"def f({_AZR_ARGS[kind]}):\n    return {body.format(k=k)}"
            if program not in held_out:
                out.append((program, kind, message))
    return out


def _azr_pools(seed: int, per_program: int = 12) -> list[tuple[str, str, list[str], list[str], list[str]]]:
    """``(program, message, inputs, outputs, abductions)`` per SFT program, seeds included, run in the sandbox.

    ``abductions[j]`` is the input an abduction solver is taught for ``outputs[j]``: the output itself when ``f``
    maps it to itself (a rule a tiny model can learn: copy), else ``inputs[j]``.
    """
    from reward_fns.code import default_sandbox
    from reward_fns.code.azr import validate_proposal, values_equal
    from verl_selfplay.azr.seeds import seed_tasks

    rng = random.Random(seed)
    pools = []
    programs = azr_programs()
    seeds = seed_tasks()
    kinds = {"'": "str", "[": "list"}
    for task in seeds["deduction"]:  # the seed programs, with inputs of the seed's kind
        if task.program not in {p for p, _, _ in programs}:
            kind = "int2" if "," in task.inputs[0] and not task.inputs[0].startswith("[") else None
            kind = kind or kinds.get(task.inputs[0][0], "int")
            programs.append((task.program, kind, "It returns its argument."))
    seed_inputs = {t.program: t.inputs[0] for t in seeds["deduction"]}
    for program, kind, message in programs:
        inputs = [_azr_random_input(kind, rng) for _ in range(per_program)]
        inputs = list(dict.fromkeys([*([seed_inputs[program]] if program in seed_inputs else []), *inputs]))
        check = validate_proposal(program, inputs, repeats=1)
        if not check.valid:
            raise RuntimeError(f"tiny AZR program {program!r} failed on {inputs}: {check.reason}: {check.detail}")
        pools.append((program, message, inputs, list(check.outputs)))
    for task in seeds["induction"]:
        pools.append((task.program, task.message, list(task.inputs), list(task.outputs)))
    # abduction's easy answer: the output itself when f maps it to itself (sorted, upper, identity, filters...)
    jobs = [(i, j) for i, pool in enumerate(pools) for j in range(len(pool[2]))]
    runs = default_sandbox().run_many([{"code": pools[i][0], "call": pools[i][3][j]} for i, j in jobs])
    answers = [list(pool[2]) for pool in pools]
    for (i, j), r in zip(jobs, runs, strict=True):
        if r.ok and values_equal(r.value, pools[i][3][j]):
            answers[i][j] = pools[i][3][j]
    return [(*pool, answer) for pool, answer in zip(pools, answers, strict=True)]


def azr_examples(
    seed: int = 0, per_type: int = 128, num_inputs: int = TINY_AZR_INDUCTION_INPUTS
) -> list[dict[str, str]]:
    """AZR-format SFT examples: ``per_type`` of each role and task type (``role``, ``task``, ``prompt``, ``response``).

    Prompts are the compact prompts of :mod:`verl_selfplay.azr.prompts`; responses are what a perfect proposer or
    solver writes (``<think>`` is already in the prompt). Proposers of deduction/abduction see 1 or 2 references
    and write a different program and an input; induction proposers write ``num_inputs`` distinct inputs and a
    message; solvers answer with the output, the input that produced it, or the program. Every output comes from
    the sandbox.
    """
    from verl_selfplay.azr.buffers import Task
    from verl_selfplay.azr.prompts import proposer_prompt, solver_prompt
    from verl_selfplay.azr.seeds import seed_tasks

    pools = _azr_pools(seed)
    rng = random.Random(seed + 1)
    code = [p for p in pools if len(p[2]) >= num_inputs]
    seeds = seed_tasks()
    # the seed tasks themselves (their pool's first input is the seed's): a run's first solver tasks
    seed_code = [p for p in code if p[2][0] in {t.inputs[0] for t in seeds["deduction"] if t.program == p[0]}]
    seed_induction = code[-len(seeds["induction"]) :]

    def one(pool) -> tuple[str, str, str]:
        i = rng.randrange(len(pool[2]))
        return pool[0], pool[2][i], pool[3][i]

    out = []
    kinds = [kind for kind in _AZR_THINK for _ in range(_AZR_MIX[kind[0]])]
    for _ in range(per_type):
        for role, task_type in kinds:
            think = _AZR_THINK[(role, task_type)]
            if role == "propose" and task_type != "induction":
                picked = rng.sample(code, rng.choice([1, 1, 2]) + 1)
                refs = [Task(task_type, ref, [i], [o]) for ref, i, o in map(one, picked[1:])]
                program, inp, _ = one(picked[0])
                prompt = proposer_prompt(task_type, refs, style=AZR_STYLE)
                answer = f"```python\n{program}\n```\n```input\n{inp}\n```"
            elif role == "propose":
                program, message, inputs, _, _ = rng.choice(code)
                prompt = proposer_prompt(
                    task_type, [Task("deduction", program, [], [])], num_inputs=num_inputs, style=AZR_STYLE
                )
                blocks = [f"```input\n{x}\n```" for x in rng.sample(inputs, num_inputs)]
                answer = "\n".join([*blocks, f"```message\n{message}\n```"])
            elif task_type != "induction":
                if rng.random() < AZR_SEED_SHARE:
                    pool, j = rng.choice(seed_code), 0
                else:
                    pool = rng.choice(code)
                    j = rng.randrange(len(pool[2]))
                program, inp, output = pool[0], pool[2][j], pool[3][j]
                prompt = solver_prompt(Task(task_type, program, [inp], [output]), style=AZR_STYLE)
                answer = output if task_type == "deduction" else pool[4][j]
            else:
                program, message, inputs, outputs, _ = rng.choice(
                    seed_induction if rng.random() < AZR_SEED_SHARE else code
                )
                visible = rng.choice([TINY_AZR_INDUCTION_VISIBLE, 3, 5])
                order = rng.sample(range(len(inputs)), min(len(inputs), visible))
                task = Task(
                    task_type, program, [inputs[i] for i in order], [outputs[i] for i in order], message=message
                )
                prompt = solver_prompt(task, visible=visible, style=AZR_STYLE)
                answer = f"```python\n{program}\n```"
            response = f"{think}</think><answer>{answer}</answer>"
            out.append({"role": role, "task": task_type, "prompt": prompt, "response": response})
    return out


def azr_sft(
    model,
    tokenizer,
    examples: list[dict[str, str]],
    steps: int,
    seed: int = 0,
    lr: float = 1e-2,
    batch_size: int = 16,
    warmup: int = 20,
) -> list[float]:
    """Teacher-force ``model`` on ``examples`` (:func:`azr_examples`), prompts as plain text; returns the losses.

    Loss on the response tokens only; AdamW with ``warmup`` steps of linear warm-up, then cosine decay.
    """
    if steps <= 0:
        return []
    rows = []
    for ex in examples:
        prompt_ids = tokenizer.encode(ex["prompt"], add_special_tokens=False)
        response_ids = tokenizer.encode(ex["response"], add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append((prompt_ids, response_ids))
    return _teacher_force(model, tokenizer, rows, steps, seed, lr, batch_size, "tiny AZR SFT", warmup)


def _sample(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float, seed: int) -> list[str]:
    """One sampled response per prompt (plain-text prompts, left-padded batch), decoded as verl decodes them."""
    import torch

    ids = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for j, row in enumerate(ids):
        input_ids[j, width - len(row) :] = torch.tensor(row)
        attention[j, width - len(row) :] = 1
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


def azr_rates(
    model,
    tokenizer,
    n: int = 32,
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 128,
    num_inputs: int = TINY_AZR_INDUCTION_INPUTS,
    visible: int = TINY_AZR_INDUCTION_VISIBLE,
    tasks: str = "seed",
) -> dict[str, dict[str, Any]]:
    """Sample ``n`` responses per role and task type and score them as the AZR run does.

    Proposers see the prompts of a run's first step (one seed reference; induction: a seed program) and are judged
    by :func:`verl_selfplay.azr.proposals.evaluate_proposal` (``valid``: the share of valid proposals, ``reasons``:
    the rejections counted). Solvers answer the ``tasks`` (``"seed"``: the seed tasks, ``"validation"``: the held-out
    ones) scored by :func:`reward_fns.compute_score` (``acc``).
    """
    from collections import Counter

    import reward_fns
    from verl_selfplay.azr.prompts import DATA_SOURCES, proposer_prompt, solver_ground_truth, solver_prompt
    from verl_selfplay.azr.proposals import evaluate_proposal
    from verl_selfplay.azr.seeds import seed_tasks, validation_tasks

    rng = random.Random(seed)
    seeds = seed_tasks()
    pool = seeds if tasks == "seed" else validation_tasks()
    results: dict[str, dict[str, Any]] = {}
    for role, task_type in _AZR_THINK:
        if role == "propose":
            refs = [[rng.choice(seeds["deduction" if task_type == "induction" else task_type])] for _ in range(n)]
            prompts = [proposer_prompt(task_type, r, num_inputs=num_inputs, style=AZR_STYLE) for r in refs]
        else:
            solve = [pool[task_type][i % len(pool[task_type])] for i in range(n)]
            shown = visible if tasks == "seed" else 5
            prompts = [solver_prompt(t, visible=shown, style=AZR_STYLE) for t in solve]
        texts = _sample(model, tokenizer, prompts, max_new_tokens, temperature, seed)
        if role == "propose":
            outcomes = [
                evaluate_proposal(task_type, text, r[0].program, num_inputs=num_inputs)
                for text, r in zip(texts, refs, strict=True)
            ]
            reasons = Counter(o.reason for o in outcomes if not o.valid)
            results[f"propose/{task_type}"] = {
                "valid": sum(o.valid for o in outcomes) / n,
                "reasons": dict(sorted(reasons.items())),
            }
        else:
            accs = []
            for text, task in zip(texts, solve, strict=True):
                truth, info = solver_ground_truth(task, visible=shown)
                accs.append(reward_fns.compute_score(DATA_SOURCES[task_type], text, truth, info)["acc"])
            results[f"solve/{task_type}"] = {"acc": sum(accs) / n}
        results[f"{role}/{task_type}"]["example"] = texts[0]
    return results


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


def azr_lengths(tokenizer, examples: list[dict[str, str]] | None = None) -> dict[str, int]:
    """Token counts a tiny AZR run must fit: the longest prompt per role/task and references, and response.

    Over ``examples`` (default :func:`azr_examples` with seed 0) and the first-step prompts (seed references):
    ``propose_prompt_1ref``/``propose_prompt_2ref`` (deduction/abduction proposer), ``propose_induction_prompt``,
    ``solve_prompt``, and ``response`` (the longest ideal response, end-of-text token included).
    """
    from verl_selfplay.azr.prompts import proposer_prompt
    from verl_selfplay.azr.seeds import seed_tasks

    def n(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    examples = azr_examples(0) if examples is None else examples
    seeds = seed_tasks()
    lengths = {"propose_prompt_1ref": 0, "propose_prompt_2ref": 0, "propose_induction_prompt": 0, "solve_prompt": 0}
    for ex in examples:
        if ex["role"] == "solve":
            key = "solve_prompt"
        elif ex["task"] == "induction":
            key = "propose_induction_prompt"
        else:
            key = "propose_prompt_2ref" if ex["prompt"].count("```output") == 2 else "propose_prompt_1ref"
        lengths[key] = max(lengths[key], n(ex["prompt"]))
    for task_type in ("deduction", "abduction"):
        for a in seeds[task_type]:
            lengths["propose_prompt_1ref"] = max(
                lengths["propose_prompt_1ref"], n(proposer_prompt(task_type, [a], style=AZR_STYLE))
            )
            for b in seeds[task_type]:
                two = proposer_prompt(task_type, [a, b], style=AZR_STYLE)
                lengths["propose_prompt_2ref"] = max(lengths["propose_prompt_2ref"], n(two))
    lengths["response"] = max(n(ex["response"]) + 1 for ex in examples)
    return lengths


def _build_prompt_response_model(
    out: Path,
    seed: int,
    examples_fn: Any,
    sft_steps: int,
    config: dict[str, Any],
    name: str,
    check: int,
    vocab_size: int | None = None,
) -> tuple[Any, Any, list[float], float, float, list[dict[str, str]]]:
    """Tokenizer (trained on ``examples_fn(seed)``), model and SFT of a plain-text prompt/response variant, saved into
    ``out``: ``(tokenizer, model, losses, sft_seconds, start, examples)``. Deterministic on any core count."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-for-bit determinism on any core count
    try:
        start = time.perf_counter()
        random.seed(seed)
        examples = examples_fn(seed)
        options = {} if vocab_size is None else {"vocab_size": vocab_size}
        built = build_tokenizer(
            seed,
            corpus=[ex["prompt"] + ex["response"] for ex in examples],
            max_length=config["max_position_embeddings"],
            **options,
        )
        built.save_pretrained(out)
        tokenizer = load_tokenizer(out)  # what verl will load; SFT must see the same token ids
        for ex in examples[:check]:
            for text in (ex["prompt"], ex["response"]):
                if tokenizer.encode(text, add_special_tokens=False) != built.encode(text, add_special_tokens=False):
                    raise RuntimeError(
                        f"tiny {name} tokenizer does not round-trip through AutoTokenizer; check QWEN2_PRETOKENIZE_REGEX"
                    )
        model = build_model(tokenizer, seed, config)
        sft_start = time.perf_counter()
        losses = azr_sft(model, tokenizer, examples, sft_steps, seed=seed)
        sft_seconds = time.perf_counter() - sft_start
        model.save_pretrained(out, safe_serialization=True)
    finally:
        torch.set_num_threads(threads)
    return tokenizer, model, losses, sft_seconds, start, examples


def build_azr(
    out: str | os.PathLike, seed: int = 0, sft_steps: int = AZR_SFT_STEPS, data_out: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Build the AZR tokenizer and model into ``out`` (and AZR's data files into ``data_out``); returns a summary."""
    out = Path(out)
    tokenizer, model, losses, sft_seconds, start, examples = _build_prompt_response_model(
        out,
        seed,
        azr_examples,
        sft_steps,
        AZR_MODEL_CONFIG,
        "AZR",
        check=len(_AZR_THINK) * max(_AZR_MIX.values()),  # every role and task type
        vocab_size=AZR_VOCAB_SIZE,
    )
    summary = {
        "path": str(out),
        "mode": "azr",
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(tokenizer),
        "max_position_embeddings": AZR_MODEL_CONFIG["max_position_embeddings"],
        "induction_inputs": TINY_AZR_INDUCTION_INPUTS,
        "induction_visible": TINY_AZR_INDUCTION_VISIBLE,
        "tokens": azr_lengths(tokenizer, examples),
        "sft_steps": sft_steps,
        "sft_final_loss": round(losses[-1], 4) if losses else None,
        "sft_seconds": round(sft_seconds, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if data_out is not None:
        from verl_selfplay.azr.data import write as write_azr

        summary["data"] = {k: str(v) for k, v in write_azr(data_out, style=AZR_STYLE).items()}
    return summary


# ---------------------------------------------------------------------------------------------------- math self-play
# The tiny model of the CPU math self-play run (`--selfplay-math`; azr.domain=math, azr.prompt_style=compact): it
# proposes addition problems "What is a+b?" and answers them, with the math domain's own compact prompts.
MATH_STYLE = "compact"
MATH_MODEL_CONFIG: dict[str, Any] = dict(MODEL_CONFIG)
MATH_SFT_STEPS = 500  # measured: the solver is right about half the time at temperature 1; rates in the docstring
MATH_SEEDS = 48  # problems in seeds.jsonl (the run holds some out with selfplay_math.heldout)
MATH_TEST = 32  # validation problems in test.parquet
MATH_TWO_DIGIT_SHARE = 0.25  # share of problems whose first operand has two digits (10-19)
MATH_PROPOSER_THINK = "a new sum"
MATH_MAX_REFERENCES = 3  # the SFT's proposer prompts hold 1 to this many references (azr.n_references)
_MATH_MIX = {"propose": 1, "solve": 2}  # examples per role in each round of math_examples


def math_problem(a: int, b: int) -> dict[str, str]:
    """The problem text and the answer of ``a + b``.

    >>> math_problem(12, 5)
    {'problem': 'What is 12+5?', 'answer': '17'}
    """
    return {"problem": f"What is {a}+{b}?", "answer": str(a + b)}


def _math_pair(rng: random.Random) -> tuple[int, int]:
    """A random operand pair: both single digits, or (share :data:`MATH_TWO_DIGIT_SHARE`) a first one of 10-19."""
    a = rng.randrange(10, 20) if rng.random() < MATH_TWO_DIGIT_SHARE else rng.randrange(10)
    return a, rng.randrange(10)


def math_seed_problems(seed: int = 0, n: int = MATH_SEEDS) -> list[dict[str, str]]:
    """``n`` distinct addition problems with their answers (the seed file's rows)."""
    rng = random.Random(f"math-seeds-{seed}")
    out: dict[str, dict[str, str]] = {}
    while len(out) < n:
        p = math_problem(*_math_pair(rng))
        out.setdefault(p["problem"], p)
    return list(out.values())


def math_examples(seed: int = 0, rounds: int = 1500) -> list[dict[str, str]]:
    """Prompt/response pairs of both roles in the math domain's compact prompts, for the SFT and the tokenizer.

    Solver: ``What is a+b?`` -> ``a+b=c</think><answer>c</answer>``. Proposer: 1 to :data:`MATH_MAX_REFERENCES`
    reference problems -> ``a new sum</think><answer>What is x+y?</answer>`` with fresh random ``x``, ``y``.
    """
    from verl_selfplay.azr.domains.math import Problem, proposer_prompt, solver_prompt

    rng = random.Random(f"math-examples-{seed}")
    out = []
    for _ in range(rounds):
        for _ in range(_MATH_MIX["propose"]):
            refs = [
                Problem(math_problem(*_math_pair(rng))["problem"]) for _ in range(rng.randint(1, MATH_MAX_REFERENCES))
            ]
            new = math_problem(*_math_pair(rng))["problem"]
            response = f"{MATH_PROPOSER_THINK}</think><answer>{new}</answer>"
            out.append({"role": "propose", "prompt": proposer_prompt(refs, style=MATH_STYLE), "response": response})
        for _ in range(_MATH_MIX["solve"]):
            a, b = _math_pair(rng)
            p = math_problem(a, b)
            prompt = solver_prompt(Problem(p["problem"]), style=MATH_STYLE)
            response = f"{a}+{b}={p['answer']}</think><answer>{p['answer']}</answer>"
            out.append({"role": "solve", "prompt": prompt, "response": response})
    return out


def math_lengths(tokenizer, examples: list[dict[str, str]] | None = None) -> dict[str, int]:
    """Token counts a tiny math run must fit: the longest proposer prompt per number of references (1 to
    :data:`MATH_MAX_REFERENCES`), solver prompt, and ideal response (end-of-text token included)."""
    from verl_selfplay.azr.domains.math import Problem, proposer_prompt

    def n(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    examples = math_examples(0) if examples is None else examples
    longest = Problem(math_problem(19, 9)["problem"])
    lengths = {f"propose_prompt_{k}ref": n(proposer_prompt([longest] * k, style=MATH_STYLE)) for k in (1, 2, 3)}
    lengths["solve_prompt"] = max(n(ex["prompt"]) for ex in examples if ex["role"] == "solve")
    lengths["response"] = max(n(ex["response"]) + 1 for ex in examples)
    return lengths


def math_rates(
    model,
    tokenizer,
    n: int = 32,
    votes: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
    references: int = 2,
) -> dict[str, Any]:
    """Sample the model as a math self-play run does and score it with the math domain's own checks.

    ``propose``: ``n`` proposals on ``references`` seed problems each, checked by
    :func:`~verl_selfplay.azr.domains.math.check_problem` (``valid``, ``reasons``), ``new`` the share of valid
    ones that are not seed problems. ``solve``: ``votes`` answers to each of the first ``n`` seed problems;
    ``acc`` the share of right answers (:func:`reward_fns.compute_score`, data source ``math``), ``shares`` the
    sorted majority shares ``s`` of :func:`reward_fns.vote.vote`, ``label_acc`` the share of problems whose vote
    label is the gold answer, ``split`` the share of problems with ``s < 1`` (the model disagrees with itself).
    """
    from collections import Counter

    import reward_fns
    from reward_fns.math import extract_answer, verify_answer
    from reward_fns.vote import vote
    from verl_selfplay.azr.domains.math import Problem, check_problem, proposer_prompt, solver_prompt

    rng = random.Random(seed)
    seeds = math_seed_problems(seed)
    refs = [rng.sample(seeds, references) for _ in range(n)]
    prompts = [proposer_prompt([Problem(r["problem"]) for r in rs], style=MATH_STYLE) for rs in refs]
    texts = _sample(model, tokenizer, prompts, max_new_tokens, temperature, seed)
    checks = [
        check_problem(t, max_chars=200, references=[r["problem"] for r in rs])
        for t, rs in zip(texts, refs, strict=True)
    ]
    valid = [p for p, reason, _ in checks if not reason]
    seed_texts = {s["problem"] for s in seeds}
    propose = {
        "valid": len(valid) / n,
        "new": sum(p not in seed_texts for p in valid) / max(1, len(valid)),
        "reasons": dict(sorted(Counter(reason for _, reason, _ in checks if reason).items())),
        "example": texts[0],
    }
    problems = seeds[:n]
    prompts = [solver_prompt(Problem(p["problem"]), style=MATH_STYLE) for p in problems for _ in range(votes)]
    texts = _sample(model, tokenizer, prompts, max_new_tokens, temperature, seed + 1)
    accs, shares, label_hits = [], [], []
    for i, p in enumerate(problems):
        answers = texts[i * votes : (i + 1) * votes]
        accs += [reward_fns.compute_score("math", t, p["answer"], {}, scheme="r1")["acc"] for t in answers]
        result = vote([extract_answer(t) for t in answers])
        shares.append(round(result.share, 4))
        label_hits.append(result.label is not None and verify_answer(result.label, p["answer"]))
    solve = {
        "acc": sum(accs) / len(accs),
        "shares": sorted(shares),
        "label_acc": sum(label_hits) / len(problems),
        "split": sum(s < 1 for s in shares) / len(problems),
        "example": texts[0],
    }
    return {"propose": propose, "solve": solve}


def write_math_data(out: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Write ``seeds.jsonl`` (:data:`MATH_SEEDS` problems with answers, for ``selfplay_math.seed_file``),
    ``test.parquet`` (:data:`MATH_TEST` validation problems, none of them a seed) and ``train.parquet`` (the seeds
    as solver rows: verl needs ``data.train_files``; self-play never draws from it) into ``out``."""
    from verl_selfplay.azr.domains.math import Problem
    from verl_selfplay.azr.math_data import write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = math_seed_problems(seed)
    taken = {p["problem"] for p in seeds}
    rng = random.Random(f"math-test-{seed}")
    test: dict[str, dict[str, str]] = {}
    while len(test) < MATH_TEST:
        p = math_problem(*_math_pair(rng))
        if p["problem"] not in taken:
            test.setdefault(p["problem"], p)
    paths = {"seeds": out / "seeds.jsonl"}
    paths["seeds"].write_text("".join(json.dumps(p) + "\n" for p in seeds))
    as_problems = [[Problem(p["problem"], gold=p["answer"]) for p in ps] for ps in (seeds, test.values())]
    paths.update(write(out, *as_problems, style=MATH_STYLE))
    return paths


def build_selfplay_math(
    out: str | os.PathLike, seed: int = 0, sft_steps: int = MATH_SFT_STEPS, data_out: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Build the math self-play tokenizer and model into ``out`` (and the seeds and validation set into
    ``data_out``); returns a summary."""
    out = Path(out)
    tokenizer, model, losses, sft_seconds, start, examples = _build_prompt_response_model(
        out, seed, math_examples, sft_steps, MATH_MODEL_CONFIG, "math", check=64
    )
    summary = {
        "path": str(out),
        "mode": "selfplay_math",
        "seed": seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(tokenizer),
        "max_position_embeddings": MATH_MODEL_CONFIG["max_position_embeddings"],
        "tokens": math_lengths(tokenizer, examples),
        "sft_steps": sft_steps,
        "sft_final_loss": round(losses[-1], 4) if losses else None,
        "sft_seconds": round(sft_seconds, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if data_out is not None:
        summary["data"] = {k: str(v) for k, v in write_math_data(data_out, seed).items()}
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.tiny", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for the model and tokenizer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sft-steps",
        type=int,
        default=None,
        help=f"SFT warm-start steps (0: random; default 200, --azr {AZR_SFT_STEPS}, --selfplay-math {MATH_SFT_STEPS})",
    )
    parser.add_argument("--data-out", default=None, help="also write train/test parquet files here")
    parser.add_argument("--azr", action="store_true", help="the Absolute Zero variant (compact AZR prompts)")
    parser.add_argument(
        "--selfplay-math", action="store_true", help="the math self-play variant (azr.domain=math, compact prompts)"
    )
    args = parser.parse_args(argv)
    if args.azr and args.selfplay_math:
        parser.error("--azr and --selfplay-math are two different models: pick one")
    if args.selfplay_math:
        steps = MATH_SFT_STEPS if args.sft_steps is None else args.sft_steps
        summary = build_selfplay_math(args.out, args.seed, steps, args.data_out)
    elif args.azr:
        steps = AZR_SFT_STEPS if args.sft_steps is None else args.sft_steps
        summary = build_azr(args.out, args.seed, steps, args.data_out)
    else:
        summary = build(args.out, args.seed, 200 if args.sft_steps is None else args.sft_steps, args.data_out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
