"""Offline math self-play: a fixed model proposes problems, votes label them, and the survivors become a verl RL parquet.

The PromptCoT pipeline (Zhao et al. 2025, arXiv 2503.02324: concept-conditioned problem synthesis, then answers
from sampled solutions) run outside training, with the checks of the in-training math domain
(:mod:`verl_selfplay.azr.domains.math`), so offline and online data pass the same code:

- **propose**: each round writes ``--batch-size`` proposer prompts (:meth:`MathDomain.proposer_prompt`), each with
  ``--k-refs`` seed problems drawn by a seeded RNG as references and, with ``--concepts``, a random concept and
  difficulty. A response is rejected by :meth:`MathDomain.parse_proposal` (``format``, ``encoding``, ``too_long``,
  ``injection``, ``contains_answer``, ``copy``), then as ``duplicate`` when its normalised text (the
  :class:`MathBuffer` key) equals that of a seed, a problem already accepted or an earlier proposal of the round, or
  ``near_duplicate`` when its MiniLM cosine (the domain's encoder) to one of those is >= ``--dedup-threshold``.
- **label**: ``--label-samples`` solver samples per surviving problem (:meth:`MathDomain.solver_prompt`), voted on by
  :meth:`MathDomain.label` (rejections ``timeout``, ``no_answers``, ``unstable_label``, ``contains_answer``).
- **stop** when ``--n-problems`` are accepted or after ``--max-rounds`` rounds; proposals left unlabelled once the
  quota is met are counted as ``surplus``.

::

    python -m verl_selfplay.data.propose --model MODEL_DIR --seeds seeds.parquet --out DIR \\
        --n-problems 1000 [--k-refs 4 --label-samples 8 --concepts algebra,geometry --prompt-style reference]

``DIR/train.parquet`` holds verl RL rows (``data_source`` ``math``; ``prompt`` in the R1 math template of
:mod:`verl_selfplay.data.prompts`; ``reward_model.ground_truth`` the vote label; ``extra_info`` with
``majority_share``, ``answer_share``, ``label_samples``, ``concept``, ``source_model`` and
``nearest_seed_similarity``). ``DIR/report.json`` counts proposals per rejection reason and gives the accepted
problems' mean majority share, diversity (mean pairwise MiniLM cosine distance) and novelty (mean cosine distance
to the nearest seed). Generation uses Hugging Face ``transformers`` (on GPU when there is one), or vLLM with
``--backend vllm`` when it is installed; prompts are the domain's plain text, or with ``--chat-template`` the inner
prompt in the tokenizer's chat template. Bad input exits with status 2 and one line naming the flag.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from verl_selfplay.azr.config import PROMPT_STYLES, AZRConfig
from verl_selfplay.azr.domains.math import (
    TASK,
    MathBuffer,
    MathConfig,
    MathDomain,
    Problem,
    load_seed_problems,
    normalise,
)
from verl_selfplay.azr.prompts import COMPACT_WRAPPER, R1_WRAPPER
from verl_selfplay.common.metrics import mean
from verl_selfplay.data import write_parquet
from verl_selfplay.data.prompts import TEMPLATES, chat_messages

PROG = "python -m verl_selfplay.data.propose"
TEXT_REASONS = ("format", "encoding", "too_long", "injection", "contains_answer", "copy")
DEDUP_REASONS = ("duplicate", "near_duplicate")
LABEL_REASONS = ("timeout", "no_answers", "unstable_label")


# the selfplay_math.* options offline mode uses (the others configure training steps)
CONFIG_KEYS = (
    "label_samples",
    "max_problem_chars",
    "min_answer_share",
    "min_majority_share",
    "dedup_threshold",
    "concepts",
    "difficulties",
    "timeout",
    "embedder",
)


def math_config(*, seed_file: str, **options: Any) -> MathConfig:
    """The domain's validated settings from offline ``options`` (keys of :data:`CONFIG_KEYS`); ``ValueError`` naming
    ``selfplay_math.<key>`` on a bad value."""
    unknown = sorted(set(options) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]}; valid: {', '.join(CONFIG_KEYS)}")
    return MathConfig.from_mapping({"seed_file": seed_file, **options})


class Generate(Protocol):
    """A sampler: one completion per prompt; ``role`` is ``"propose"`` or ``"solve"``."""

    def __call__(self, prompts: Sequence[str], *, role: str) -> list[str]: ...


# ---------------------------------------------------------------------- generation backend
def unwrap(text: str, style: str) -> str:
    """The inner prompt of a domain prompt (the reverse of :func:`verl_selfplay.azr.prompts.wrap`).

    >>> unwrap("User: What is 3+4?\\nAssistant: <think>", "compact")
    'What is 3+4?'
    """
    head, tail = (COMPACT_WRAPPER if style == "compact" else R1_WRAPPER).split("{prompt}")
    if text.startswith(head) and text.endswith(tail):
        return text[len(head) : len(text) - len(tail)]
    return text


class Sampler:
    """What both backends share: the prompt as token ids (plain text, or the inner prompt in the tokenizer's chat
    template), cut on the left to leave ``max_new_tokens`` of the model's ``context``."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        context: int | None,
        max_new_tokens: int,
        chat_template: bool = False,
        style: str = "reference",
    ) -> None:
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("--chat-template: the tokenizer of --model has no chat template")
        self.tokenizer, self.context, self.max_new_tokens = tokenizer, context, max_new_tokens
        self.chat_template, self.style = chat_template, style
        self.truncated = 0  # prompts that did not fit the context and were cut on the left

    def encode(self, prompt: str) -> list[int]:
        """The token ids of ``prompt`` as the model sees it."""
        if self.chat_template:
            messages = [{"role": "user", "content": unwrap(prompt, self.style)}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.tokenizer.encode(prompt, add_special_tokens=False)

    def fits(self, prompt: str) -> bool:
        """Whether ``prompt`` leaves room for ``max_new_tokens`` in the model's context."""
        return self.context is None or len(self.encode(prompt)) + self.max_new_tokens <= self.context

    def prompt_ids(self, prompts: Sequence[str]) -> tuple[list[list[int]], int]:
        """The prompts' token ids (cut to fit) and the number of new tokens they leave room for."""
        ids = [self.encode(p) for p in prompts]
        new = self.max_new_tokens
        if self.context is not None and ids:
            keep = max(1, self.context - new)
            self.truncated += sum(len(row) > keep for row in ids)
            ids = [row[-keep:] for row in ids]
            new = max(1, min(new, self.context - max(map(len, ids))))
        return ids, new


class HFGenerator(Sampler):
    """Batched sampling with a Hugging Face causal LM (top-k and top-p off), decoded as verl decodes responses."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        max_new_tokens: int = 512,
        batch_size: int = 64,
        chat_template: bool = False,
        style: str = "reference",
        seed: int = 0,
    ) -> None:
        import torch

        context = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        super().__init__(
            tokenizer, context=context, max_new_tokens=max_new_tokens, chat_template=chat_template, style=style
        )
        self.model, self.temperature, self.batch_size = model, temperature, batch_size
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        model.eval()

    def __call__(self, prompts: Sequence[str], *, role: str = "") -> list[str]:
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            out += self._batch(list(prompts[start : start + self.batch_size]))
        return out

    def _batch(self, prompts: list[str]) -> list[str]:
        import torch

        ids, new = self.prompt_ids(prompts)
        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        for j, row in enumerate(ids):
            input_ids[j, width - len(row) :] = torch.tensor(row)
            attention[j, width - len(row) :] = 1
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
        with torch.no_grad():
            tokens = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                max_new_tokens=new,
                do_sample=True,
                temperature=self.temperature,
                top_k=0,
                top_p=1.0,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.pad_id,
            )
        return self.tokenizer.batch_decode(tokens[:, width:].cpu(), skip_special_tokens=True)


class VLLMGenerator(Sampler):
    """Sampling with a vLLM engine (``--backend vllm``, when vLLM is installed): the same prompt ids, temperature and
    token budget as :class:`HFGenerator`."""

    def __init__(
        self,
        path: str,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        max_new_tokens: int = 512,
        chat_template: bool = False,
        style: str = "reference",
        seed: int = 0,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ValueError(
                f"--backend vllm: vllm cannot be imported ({e}); pip install vllm or use --backend hf"
            ) from e
        self.llm = LLM(model=path, seed=seed)
        context = int(self.llm.llm_engine.model_config.max_model_len)
        super().__init__(
            tokenizer, context=context, max_new_tokens=max_new_tokens, chat_template=chat_template, style=style
        )
        self.temperature = temperature

    def __call__(self, prompts: Sequence[str], *, role: str = "") -> list[str]:
        from vllm import SamplingParams

        ids, new = self.prompt_ids(prompts)
        params = SamplingParams(temperature=self.temperature, top_p=1.0, max_tokens=new, skip_special_tokens=True)
        outputs = self.llm.generate([{"prompt_token_ids": row} for row in ids], params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]


def load_model(path: str, device: str | None = None) -> Any:
    """The causal LM at ``path``, on ``device`` (default: CUDA if available; bfloat16 there, else float32)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)


def _load(what: str, load: Callable[[], Any]) -> Any:
    """``load()``; any failure becomes an :class:`InputError` naming ``--model`` (one line)."""
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - any unloadable checkpoint is bad input
        first = f"{type(e).__name__}: {e}".strip().split("\n")[0]
        raise InputError(f"--model={what!r} cannot be loaded: {first}") from e


# ---------------------------------------------------------------------- the pipeline
def propose(
    model: Any,
    tokenizer: Any,
    seeds: Sequence[Problem],
    *,
    n_problems: int,
    max_rounds: int = 100,
    batch_size: int = 32,
    k_refs: int = 4,
    label_samples: int = 8,
    concepts: Sequence[str] = (),
    difficulties: Sequence[str] = ("easy", "medium", "hard"),
    prompt_style: str = "reference",
    dedup_threshold: float = 0.95,
    min_answer_share: float = 0.5,
    min_majority_share: float = 0.3,
    max_problem_chars: int = 2000,
    timeout: float = 5.0,
    embedder: str = "",
    temperature: float = 1.0,
    max_new_tokens: int = 512,
    gen_batch_size: int = 64,
    chat_template: bool = False,
    seed: int = 0,
    data_source: str = "math",
    template: str = "r1_math",
    source_model: str = "",
    seed_file: str = "<in memory>",
    generate: Generate | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Propose and vote-label problems until ``n_problems`` are accepted or ``max_rounds`` rounds have run.

    Returns the verl rows and the report (see the module docstring). ``generate`` replaces the Hugging Face sampler
    built from ``model`` and ``tokenizer`` (which may then be None); the checks, votes and embeddings stay real.
    ``ValueError`` naming the option (``selfplay_math.<key>`` or the argument) on a bad setting.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    if n_problems < 1 or max_rounds < 1 or batch_size < 1 or k_refs < 1:
        raise ValueError("n_problems, max_rounds, batch_size and k_refs must be >= 1")
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style must be one of {', '.join(PROMPT_STYLES)}, got {prompt_style!r}")
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(sorted(TEMPLATES))}")
    if not seeds:
        raise ValueError("no seed problems")
    cfg = math_config(
        seed_file=seed_file,
        label_samples=label_samples,
        max_problem_chars=max_problem_chars,
        min_answer_share=min_answer_share,
        min_majority_share=min_majority_share,
        dedup_threshold=dedup_threshold,
        concepts=tuple(concepts),
        difficulties=tuple(difficulties),
        timeout=timeout,
        embedder=embedder,
    )
    domain = MathDomain(AZRConfig(domain="math", prompt_style=prompt_style, n_references=k_refs), cfg)
    if generate is None:
        sampler = HFGenerator(
            model,
            tokenizer,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            batch_size=gen_batch_size,
            chat_template=chat_template,
            style=prompt_style,
            seed=seed,
        )
        generate = sampler
    fits: Callable[[str], bool] = generate.fits if isinstance(generate, Sampler) else _fits_any
    rng = random.Random(seed)
    seeds = [Problem(p.problem, gold=p.gold, source="seed") for p in seeds]
    # exact duplicates: the buffer's text keys; near duplicates: one matrix of the seeds' and accepted problems'
    # embeddings, grown once a round (MathBuffer.max_similarity re-embeds the whole buffer on every call)
    buffer = MathBuffer(TASK, cap=len(seeds) + n_problems + 1)
    buffer.tasks = list(seeds)
    buffer._rebuild_index()
    seed_vecs = domain.embed([p.problem for p in seeds])
    bank = seed_vecs

    rows: list[dict[str, Any]] = []
    accepted: list[tuple[Problem, dict[str, Any]]] = []
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    proposals = surplus = rounds = 0
    bar = tqdm(total=n_problems, desc="propose: accepted", unit="problem", file=sys.stderr, disable=not progress)
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - the count is reported
        # propose
        specs = []
        for _ in range(batch_size):
            refs = rng.sample(seeds, min(k_refs, len(seeds)))
            concept = rng.choice(cfg.concepts) if cfg.concepts else ""
            difficulty = rng.choice(cfg.difficulties) if concept else ""
            text = domain.proposer_prompt(TASK, refs, concept, difficulty)
            while len(refs) > 1 and not fits(text):
                refs = refs[:-1]
                text = domain.proposer_prompt(TASK, refs, concept, difficulty)
            specs.append((text, {"references": [r.problem for r in refs], "concept": concept}))
        responses = generate([t for t, _ in specs], role="propose")
        if len(responses) != len(specs):
            raise RuntimeError(f"the sampler returned {len(responses)} completions for {len(specs)} prompts")
        proposals += len(specs)
        # text checks and exact duplicates (of the seeds, the accepted problems and this round's earlier proposals)
        fresh: list[Problem] = []
        pending: set[str] = set()
        for response, (_, info) in zip(responses, specs, strict=True):
            parsed = domain.parse_proposal(TASK, response if isinstance(response, str) else "", info)
            if not parsed.valid:
                reject(reasons, examples, parsed.reason, response)
            elif parsed.record in buffer or normalise(parsed.record.problem) in pending:
                reject(reasons, examples, "duplicate", parsed.record.problem)
            else:
                pending.add(normalise(parsed.record.problem))
                fresh.append(parsed.record)
        # near duplicates, by MiniLM cosine, of the same (one encoder call per round)
        candidates: list[Problem] = []
        if fresh and cfg.dedup_threshold < 1.0:
            vecs = domain.embed([r.problem for r in fresh])
            to_bank = (vecs @ bank.T).max(axis=1)
            kept: list[int] = []
            for j, record in enumerate(fresh):
                near = max([float(to_bank[j]), *(float(vecs[j] @ vecs[k]) for k in kept)])
                if near >= cfg.dedup_threshold:
                    reject(reasons, examples, "near_duplicate", record.problem)
                else:
                    kept.append(j)
                    candidates.append(record)
        else:
            candidates = fresh
        # label, a chunk of problems at a time, until the quota is met
        label_bar = tqdm(
            total=len(candidates),
            desc=f"label round {rounds}",
            unit="problem",
            file=sys.stderr,
            leave=False,
            disable=not progress,
        )
        i, before = 0, len(accepted)
        while i < len(candidates) and len(accepted) < n_problems:
            chunk = candidates[i : i + max(1, n_problems - len(accepted))]
            i += len(chunk)
            prompts = [domain.solver_prompt(p) for p in chunk for _ in range(cfg.label_samples)]
            samples = generate(prompts, role="solve")
            if len(samples) != len(prompts):
                raise RuntimeError(f"the sampler returned {len(samples)} completions for {len(prompts)} prompts")
            for j, record in enumerate(chunk):
                m = cfg.label_samples
                label = domain.label(record, samples[j * m : (j + 1) * m])
                label_bar.update(1)
                if not label.valid:
                    reject(reasons, examples, label.reason, record.problem)
                elif len(accepted) >= n_problems:
                    surplus += 1
                elif not buffer.add(label.record, step=rounds):  # cannot happen after the checks above
                    reject(reasons, examples, "duplicate", record.problem)
                else:
                    accepted.append((label.record, label.info))
                    bar.update(1)
        surplus += len(candidates) - i
        label_bar.close()
        if len(accepted) > before and cfg.dedup_threshold < 1.0:
            bank = np.concatenate([bank, domain.embed([p.problem for p, _ in accepted[before:]])])
        bar.set_postfix(round=rounds, proposals=proposals)
        if len(accepted) >= n_problems:
            break
    bar.close()

    texts = [p.problem for p, _ in accepted]
    vecs = domain.embed(texts) if texts else np.zeros((0, seed_vecs.shape[1]), np.float32)
    nearest = (vecs @ seed_vecs.T).max(axis=1) if texts else np.zeros(0)
    for index, ((problem, info), sim) in enumerate(zip(accepted, nearest, strict=True)):
        rows.append(
            {
                "data_source": data_source,
                "prompt": chat_messages(template, problem.problem),
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(problem.label)},
                "extra_info": {
                    "split": "train",
                    "index": index,
                    "question": problem.problem,
                    "majority_share": float(info["majority_share"]),
                    "answer_share": float(info["answer_share"]),
                    "label_samples": cfg.label_samples,
                    "concept": problem.concept,
                    "source_model": source_model,
                    "nearest_seed_similarity": float(sim),
                },
            }
        )
    report = {
        "source_model": source_model,
        "seed_file": seed_file,
        "seeds": len(seeds),
        "rounds": rounds,
        "proposals": proposals,
        "accepted": len(accepted),
        "rejected": dict(sorted(reasons.items())),
        "surplus": surplus,
        "mean_majority_share": _finite(mean((i["majority_share"] for _, i in accepted), float("nan"))),
        "mean_answer_share": _finite(mean((i["answer_share"] for _, i in accepted), float("nan"))),
        "diversity": _finite(_pairwise_distance(vecs)),
        "novelty": _finite(float(np.mean(1.0 - nearest)) if texts else float("nan")),
        "settings": {
            **{k: v for k, v in asdict(cfg).items() if k in CONFIG_KEYS},
            "n_problems": n_problems,
            "max_rounds": max_rounds,
            "batch_size": batch_size,
            "k_refs": k_refs,
            "prompt_style": prompt_style,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "chat_template": chat_template,
            "seed": seed,
        },
        "rejected_examples": examples,
        "seconds": round(time.perf_counter() - start, 2),
    }
    if isinstance(generate, Sampler):
        report["truncated_prompts"] = generate.truncated
    return rows, report


def _fits_any(_prompt: str) -> bool:
    """Every prompt fits an injected sampler."""
    return True


def reject(reasons: Counter[str], examples: dict[str, str], reason: str, text: Any) -> None:
    """Count a rejection and keep the first example of each reason (cut to 200 characters)."""
    reasons[reason or "unknown"] += 1
    examples.setdefault(reason or "unknown", str(text)[:200])


def _pairwise_distance(vecs: np.ndarray) -> float:
    from verl_selfplay.common.embeddings import mean_pairwise_distance

    return mean_pairwise_distance(vecs)


def _finite(x: float) -> float | None:
    """``x``, or None (JSON null) for NaN."""
    return None if x is None or not math.isfinite(x) else float(x)


# ---------------------------------------------------------------------- command line
class InputError(ValueError):
    """Bad command-line input: one line naming the flag."""


def _flag_message(message: str) -> str:
    """``selfplay_math.<key>`` in a domain error becomes the flag ``--<key>`` (``seed_file``: ``--seeds``)."""
    message = message.replace("selfplay_math.seed_file", "--seeds")
    return re.sub(r"selfplay_math\.(\w+)", lambda m: "--" + m.group(1).replace("_", "-"), message)


def _items(value: str, flag: str) -> tuple[str, ...]:
    """Comma-separated items, or the lines of a file when ``value`` names one."""
    if not value:
        return ()
    path = Path(value)
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{flag}={value!r} cannot be read: {e}") from e
        return tuple(s.strip() for s in lines if s.strip())
    return tuple(s.strip() for s in value.split(",") if s.strip())


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Hugging Face model directory (the fixed proposer and solver)")
    p.add_argument("--seeds", required=True, help="seed problems: verl RL parquet or JSON lines (problem/question)")
    p.add_argument("--out", required=True, type=Path, help="output folder (train.parquet, report.json)")
    p.add_argument("--n-problems", type=int, default=100, help="stop after this many accepted problems")
    p.add_argument("--max-rounds", type=int, default=100, help="stop after this many proposal rounds")
    p.add_argument("--batch-size", type=int, default=32, help="proposals per round")
    p.add_argument("--k-refs", type=int, default=4, help="reference seed problems per proposer prompt")
    p.add_argument("--label-samples", type=int, default=8, help="solver samples voted on per problem (m)")
    p.add_argument("--concepts", default="", help="comma-separated concepts, or a file with one a line (PromptCoT)")
    p.add_argument("--difficulties", default="easy,medium,hard", help="difficulties drawn with a concept")
    p.add_argument("--prompt-style", default="reference", choices=PROMPT_STYLES, help="R1 wrapper or compact")
    p.add_argument("--chat-template", action="store_true", help="render prompts with the tokenizer's chat template")
    p.add_argument("--dedup-threshold", type=float, default=0.95, help="MiniLM cosine of a near-duplicate")
    p.add_argument("--min-answer-share", type=float, default=0.5, help="least share of samples giving an answer")
    p.add_argument("--min-majority-share", type=float, default=0.3, help="least share agreeing with the label")
    p.add_argument("--max-problem-chars", type=int, default=2000, help="longest problem statement")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per answer comparison")
    p.add_argument("--embedder", default="", help="sentence-transformers model dir (default: bundled MiniLM)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.add_argument("--max-new-tokens", type=int, default=512, help="tokens per completion")
    p.add_argument("--gen-batch-size", type=int, default=64, help="prompts per generate call")
    p.add_argument("--backend", default="hf", choices=("hf", "vllm"), help="transformers generate, or vLLM")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the reference draws and the sampling")
    p.add_argument("--data-source", default="math", help="data_source of the rows (default math)")
    p.add_argument("--template", default="r1_math", choices=sorted(TEMPLATES), help="prompt template of the rows")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _check_args(args: argparse.Namespace) -> None:
    for flag, value, least in (
        ("--n-problems", args.n_problems, 1),
        ("--max-rounds", args.max_rounds, 1),
        ("--batch-size", args.batch_size, 1),
        ("--k-refs", args.k_refs, 1),
        ("--max-new-tokens", args.max_new_tokens, 1),
        ("--gen-batch-size", args.gen_batch_size, 1),
    ):
        if value < least:
            raise InputError(f"{flag} must be >= {least}, got {value}")
    if not math.isfinite(args.temperature) or args.temperature <= 0:
        raise InputError(f"--temperature must be a finite number > 0, got {args.temperature}")
    model = Path(args.model)
    if not model.is_dir():
        raise InputError(f"--model={args.model!r} is not a directory")
    if not (model / "config.json").is_file():
        raise InputError(f"--model={args.model!r} holds no config.json (not a Hugging Face model directory)")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out={str(args.out)!r} exists and is not a directory")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2: bad input, 1: nothing accepted)."""
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        options = {
            "label_samples": args.label_samples,
            "max_problem_chars": args.max_problem_chars,
            "min_answer_share": args.min_answer_share,
            "min_majority_share": args.min_majority_share,
            "dedup_threshold": args.dedup_threshold,
            "concepts": _items(args.concepts, "--concepts"),
            "difficulties": _items(args.difficulties, "--difficulties"),
            "timeout": args.timeout,
            "embedder": args.embedder,
        }
        math_config(seed_file=args.seeds, **options)  # bad values fail here, before the model loads
        seeds = load_seed_problems(args.seeds)
        from transformers import AutoTokenizer

        tokenizer = _load(args.model, lambda: AutoTokenizer.from_pretrained(args.model))
        if args.chat_template and not getattr(tokenizer, "chat_template", None):
            raise InputError("--chat-template: the tokenizer of --model has no chat template")
        model = generate = None
        if args.backend == "hf":
            model = _load(args.model, lambda: load_model(args.model, args.device))
        else:
            generate = VLLMGenerator(
                args.model,
                tokenizer,
                temperature=args.temperature,
                max_new_tokens=args.max_new_tokens,
                chat_template=args.chat_template,
                style=args.prompt_style,
                seed=args.seed,
            )
        rows, report = propose(
            model,
            tokenizer,
            seeds,
            n_problems=args.n_problems,
            max_rounds=args.max_rounds,
            batch_size=args.batch_size,
            k_refs=args.k_refs,
            prompt_style=args.prompt_style,
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            gen_batch_size=args.gen_batch_size,
            chat_template=args.chat_template,
            seed=args.seed,
            data_source=args.data_source,
            template=args.template,
            source_model=str(args.model),
            seed_file=str(args.seeds),
            progress=not args.no_progress,
            generate=generate,
            **options,
        )
    except ValueError as e:  # InputError and the domain's option errors
        print(f"{PROG}: error: {_flag_message(str(e))}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = ", ".join(f"{k} {v}" for k, v in report["rejected"].items()) or "none"
    print(f"{report['accepted']} of {report['proposals']} proposals accepted; rejected: {summary}", file=sys.stderr)
    if not rows:
        print(f"no problem accepted: no parquet written (report in {report_path})", file=sys.stderr)
        return 1
    path = write_parquet(rows, args.out / "train.parquet")
    print(f"wrote {len(rows)} rows to {path} and the report to {report_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
