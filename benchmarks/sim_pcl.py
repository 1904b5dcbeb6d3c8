"""Simulated PCL: effective ratio and selection cost of uniform sampling, DS and PCL-embedding on a drifting pool.

``python benchmarks/sim_pcl.py [--steps 100] [--m 32] [--n 16] [--k 4] [--r 4] [--out benchmarks/out/sim_pcl.png]``

The prompts are real Knights & Knaves puzzles (``reward_fns.logic.generate_puzzle``, 2-8 people). A simulated
policy of skill ``s`` solves a puzzle of ``N`` people with probability ``sigmoid(a * (s - N) + e_x)``, where
``e_x`` is a fixed per-puzzle offset the text does not reveal. Each step a method picks ``m`` prompts out of ``k*m``
candidates drawn from a :class:`~verl_selfplay.pcl.selection.CandidatePool`, ``n`` rollouts per kept prompt are
drawn, and the policy improves in proportion to the share of informative prompts (those with 0 < successes < n,
the only ones with a non-zero GRPO gradient), so pass rates drift up and yesterday's medium puzzles become easy.

- **uniform**: the first ``m`` candidates (verl's plain dataloader order);
- **DS**: ``r`` screening rollouts per candidate, keep the ``m`` closest to pass rate 0.5 (cost: ``k*m*r`` extra
  rollouts per step);
- **PCL-embedding**: ``build_value_model("embedding")`` (MiniLM + online head) predicts, ``select`` keeps the ``m``
  closest to 0.5, and the model is fitted to the observed mean rewards after the step.

Prints a table (effective ratio, final pass rate, selection cost) and saves a PNG of the effective ratio over
steps. Target: PCL effective ratio >= 0.85, with uniform sampling beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from tqdm import tqdm

from reward_fns.logic import generate_puzzle
from verl_selfplay.pcl.selection import CandidatePool, effective_ratio, select
from verl_selfplay.pcl.value_model import build_value_model

TARGET = 0.85
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "sim_pcl.png"


@dataclass
class Run:
    """One method's trajectory."""

    name: str
    skill: float
    effective: list[float] = field(default_factory=list)
    mean_pass: list[float] = field(default_factory=list)
    screening_rollouts: int = 0
    selection_s: float = 0.0


def pass_rates(skill: float, n_people: np.ndarray, offset: np.ndarray, slope: float) -> np.ndarray:
    """True pass rate of every puzzle for a policy of the given skill."""
    return 1.0 / (1.0 + np.exp(-(slope * (skill - n_people) + offset)))


def simulate(args, texts: list[str], n_people: np.ndarray, offset: np.ndarray, vm, bar) -> list[Run]:
    runs = [Run("uniform", args.skill0), Run("DS", args.skill0), Run("PCL-embedding", args.skill0)]
    for run_id, run in enumerate(runs):
        rng = np.random.default_rng([args.seed, run_id])
        pool = CandidatePool(len(texts), seed=args.seed)
        for _ in range(args.steps):
            p = pass_rates(run.skill, n_people, offset, args.slope)
            cand = pool.draw(args.k * args.m)
            start = time.perf_counter()
            if run.name == "uniform":
                chosen = list(range(args.m))
            elif run.name == "DS":
                screen = rng.binomial(args.r, p[cand]) / args.r
                run.screening_rollouts += len(cand) * args.r
                chosen = select(screen, args.m, args.tau).tolist()
            else:
                chosen = select(vm.predict([texts[i] for i in cand]), args.m, args.tau).tolist()
            run.selection_s += time.perf_counter() - start
            pool.commit(cand, chosen)
            kept = [cand[i] for i in chosen]
            rewards = (rng.random((len(kept), args.n)) < p[kept][:, None]).astype(float)
            if run.name == "PCL-embedding":
                start = time.perf_counter()
                vm.update([texts[i] for i in kept], rewards.mean(axis=1))
                run.selection_s += time.perf_counter() - start
            eff = effective_ratio(rewards)
            run.effective.append(eff)
            run.mean_pass.append(float(p.mean()))
            run.skill += args.lr * eff  # learning comes only from prompts with a non-zero advantage
            bar.update(1)
    return runs


def plot(runs: list[Run], out: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(1, args.steps + 1)
    for run in runs:
        smooth = np.convolve(run.effective, np.ones(5) / 5, mode="valid")
        ax1.plot(steps[4:], smooth, label=run.name)
        ax2.plot(steps, run.mean_pass, label=run.name)
    ax1.axhline(TARGET, color="grey", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax1.set(xlabel="step", ylabel="effective ratio (5-step mean)", ylim=(0, 1.02), title="Prompts with 0 < acc < 1")
    ax2.set(xlabel="step", ylabel="mean pass rate over the pool", ylim=(0, 1), title="Simulated policy")
    ax1.legend(loc="lower right")
    ax2.legend(loc="lower right")
    fig.suptitle(f"K&K pool of {args.pool_size} puzzles, m={args.m}, n={args.n}, k={args.k}, DS r={args.r}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--m", type=int, default=32, help="prompts per step")
    ap.add_argument("--n", type=int, default=16, help="rollouts per kept prompt (PCL's n = 16 at m = 512)")
    ap.add_argument("--k", type=int, default=4, help="candidates per kept prompt")
    ap.add_argument("--r", type=int, default=4, help="DS screening rollouts per candidate")
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--per-level", type=int, default=60, help="puzzles per number of people (2..8)")
    ap.add_argument("--skill0", type=float, default=3.5, help="initial skill: puzzles of this many people are 50/50")
    ap.add_argument("--slope", type=float, default=1.2)
    ap.add_argument("--noise", type=float, default=0.5, help="std of the per-puzzle offset e_x")
    ap.add_argument("--lr", type=float, default=0.04, help="skill gained per step at effective ratio 1")
    ap.add_argument("--max-seq-length", type=int, default=128, help="MiniLM truncation (tokens)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path")
    args = ap.parse_args(argv)

    puzzles = [generate_puzzle(n, seed=args.seed * 10_000 + i) for n in range(2, 9) for i in range(args.per_level)]
    texts = [p.text for p in puzzles]
    args.pool_size = len(texts)
    n_people = np.array([p.n_people for p in puzzles], dtype=float)
    offset = np.random.default_rng(args.seed).normal(0.0, args.noise, len(texts))

    vm = build_value_model("embedding", max_seq_length=args.max_seq_length, seed=args.seed)
    start = time.perf_counter()
    for i in tqdm(range(0, len(texts), 32), desc="embedding puzzles (MiniLM)", file=sys.stderr):
        vm.embed(texts[i : i + 32])
    embed_s = time.perf_counter() - start

    with tqdm(total=3 * args.steps, desc="simulating", file=sys.stderr) as bar:
        runs = simulate(args, texts, n_people, offset, vm, bar)

    print(f"# pool: {len(texts)} K&K puzzles; m={args.m}, n={args.n}, k={args.k}, DS r={args.r}, {args.steps} steps")
    print(
        f"# MiniLM embedding of the pool (once, cached): {embed_s:.1f} s = {1000 * embed_s / len(texts):.1f} ms/puzzle"
    )
    print()
    cols = ["method", "eff. ratio (all)", "eff. ratio (steps 11+)", "final pool pass rate"]
    cols += ["screening rollouts/step", "selection ms/step"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("-" * (len(c) + 2) for c in cols) + "|")
    for run in runs:
        print(
            f"| {run.name:6s} | {np.mean(run.effective):16.3f} | {np.mean(run.effective[10:]):22.3f} | "
            f"{run.mean_pass[-1]:20.3f} | {run.screening_rollouts / args.steps:23.0f} | "
            f"{1000 * run.selection_s / args.steps:17.2f} |"
        )
    plot(runs, args.out, args)
    pcl_eff = float(np.mean(runs[2].effective))
    verdict = "PASS" if pcl_eff >= TARGET else "FAIL"
    print(
        f"\nPCL effective ratio {pcl_eff:.3f} vs uniform {np.mean(runs[0].effective):.3f} (target >= {TARGET}): {verdict}"
    )
    print(f"plot: {args.out}")
    return 0 if pcl_eff >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
