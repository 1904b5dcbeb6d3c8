"""Simulated math self-play: does the proposer reward fill the buffer with half-solved problems, and pay off?

``python benchmarks/sim_selfplay_math.py [--iters 200] [--seed 0] [--png benchmarks/out/sim_selfplay_math.png]``

A synthetic world on the real parts of ``azr.domain=math`` (:mod:`verl_selfplay.azr.domains.math`):

- **Problems** belong to ``--families`` families. Family ``f`` has a known skill ``p_f`` (logit-spaced over
  [``--p-min``, ``--p-max``], so that, as in real seed sets, many families are nearly always or nearly never
  solved); a problem ``x`` of it has skill ``p_x = sigmoid(logit(p_f) + e_x)``, ``e_x ~ N(0, --problem-noise)``,
  a true answer, one *systematic* wrong answer (a common mistake) and a unique text.
- **The solver** (fixed, it does not learn) answers ``x`` correctly with probability ``p_x``; otherwise it gives no
  answer (share ``--no-answer``), the systematic wrong answer (share ``--systematic``) or a scattered one. On a hard
  problem the systematic mistake can win the vote, so a vote label can be wrong: its accuracy is measured.
- **The proposer** is a softmax over families (logits), trained by REINFORCE: each iteration it proposes
  ``--propose`` problems; each is labelled by the real :func:`reward_fns.vote.vote` over ``--label-samples`` solver
  answers (plain integer strings: math-verify's fast path) and is valid as in ``MathDomain.label`` (enough answers,
  majority share >= ``--min-majority-share``). The reward is the real
  :func:`~verl_selfplay.azr.domains.math.proposer_reward`, ``1 - 2|s - 1/2|`` minus the batch-similarity penalty (R-Zero's uncertainty reward and
  repetition penalty, Huang et al. 2025, arXiv 2508.05004, §3.2; two proposals of one family count as one
  template here, where the trainer uses MiniLM cosine), ``azr.invalid_reward`` (-1) for an invalid one. Rewards are
  whitened per batch (Task-Relative REINFORCE++ whitens per task and role) before the policy-gradient step.
- **The buffer** is a real :class:`~verl_selfplay.azr.domains.math.MathBuffer` (text dedup only: no embedder) that
  starts with the seed problems (``--seeds-per-family`` per family, labelled by the same vote, ``seed_labels=vote``),
  takes the valid proposals, caps at ``--buffer-cap`` evicting the least useful proposed problem, and feeds the
  solver ``--solve`` problems per iteration through :meth:`~verl_selfplay.azr.domains.math.MathBuffer.for_solver`
  (weight ``max(0.05, 1 - 2|s - 1/2|)``, PCL's targeting, arXiv 2510.01135). Each solver group (``--solver-samples``
  answers) is scored against the stored label and re-measures the problem's ``s``, as ``MathDomain.harvest`` does.

Four arms, each measured in this run with the same seed (same families, seed problems and seed labels):

- **self-play**: the proposer trained with the proposer reward, the buffer and its targeting;
- **uniform proposer**: the same buffer and targeting, the proposer left uniform over families (the buffer without
  the proposer reward: a constant reward whitens to zero advantage);
- **uniform seeds**: ``--solve`` problems per iteration drawn uniformly from the vote-labelled seeds (the labels the
  self-play arms start with), scored against those labels, with the same ``G``;
- **uniform seeds, gold**: the same draws scored against the seeds' gold answers (plain RL on the seed set: every
  label is right).

A solver group has a non-zero advantage when its accuracy lies strictly between 0 and 1 (the groups GRPO or
REINFORCE++ learn from). Printed: the share of such groups per arm and its ratio to each uniform-seed arm, also
counting only groups whose label is the true answer (a wrong label's gradient teaches the mistake); then the first
and last values of the curves: the buffer's mean ``|s - 1/2|`` and share with ``s`` in [1/4, 3/4] (``s`` as
measured, over every labelled problem, seeds included; also the mean ``|p - 1/2|`` of the true skills), the
proposer's entropy over families, the accuracy of the buffer's labels and the share of valid proposals. Most of the
gain in non-zero-advantage groups comes from the buffer (eviction of the least useful problem and the targeting),
which the uniform-proposer arm shares; the proposer reward's own contribution shows in the buffer's ``|s - 1/2|``,
the true skills and the label accuracy (it stops proposing the hard families whose vote the systematic mistake
wins). Simplifications: the solver does not learn; all seeds are labelled before iteration 1 (the trainer's seeding
phase labels ``azr.solve_per_type`` of them, then ``relabel_per_step`` per step); no probe or re-labelling rows;
solver answers are compared with the label as strings (the trainer's ``vote`` scorer uses math-verify).
``--no-targeting`` draws the solver problems uniformly from the labelled buffer instead. Deterministic given
``--seed``; a few seconds on one core with the defaults.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reward_fns.vote import vote
from verl_selfplay.azr.domains.math import MathBuffer, Problem, proposer_reward

DEFAULT_PNG = Path(__file__).resolve().parent / "out" / "sim_selfplay_math.png"
SEEDS_VOTE, SEEDS_GOLD = "uniform seeds", "uniform seeds, gold"
ARMS = ("self-play", "uniform proposer", SEEDS_VOTE, SEEDS_GOLD)
BUFFER_ARMS = ARMS[:2]
SCATTER = (10**6, 10**7)  # scattered wrong answers: random integers far from every true and systematic answer

# A proposer reward as the simulation calls it: (s or None when invalid, batch-similarity penalty) -> reward.
RewardFn = Callable[[float | None, float], float]


@dataclass
class Config:
    """The simulation's settings (the command line's flags, ``-`` for ``_``)."""

    families: int = 20
    p_min: float = 0.02  # skill of the hardest family
    p_max: float = 0.98  # skill of the easiest family
    problem_noise: float = 0.5  # std of a problem's logit offset from its family's skill
    systematic: float = 0.3  # share of wrong answers that are the problem's one common mistake
    no_answer: float = 0.05  # share of wrong answers that give no answer at all
    seeds_per_family: int = 5
    iters: int = 200
    propose: int = 16  # proposals per iteration (azr.propose_per_type)
    solve: int = 16  # solver problems per iteration (azr.solve_per_type)
    label_samples: int = 8  # m (selfplay_math.label_samples)
    solver_samples: int = 16  # G (selfplay_math.solver_samples)
    min_answer_share: float = 0.5
    min_majority_share: float = 0.3
    similarity_penalty: float = 0.5
    invalid_reward: float = -1.0  # azr.invalid_reward
    buffer_cap: int = 256  # azr.buffer_cap
    lr: float = 1.0  # proposer learning rate (on whitened advantages)
    targeting: bool = True  # solver draws by MathBuffer.for_solver; False: uniform over the labelled buffer
    seed: int = 0


@dataclass
class Truth:
    """The hidden facts of one problem."""

    family: int
    skill: float
    answer: str
    mistake: str


@dataclass
class Arm:
    """One arm's trajectory: one entry per iteration."""

    name: str
    informative: list[float] = field(default_factory=list)  # share of solver groups with 0 < acc < 1
    informative_true: list[float] = field(default_factory=list)  # ... whose label is the true answer
    gap: list[float] = field(default_factory=list)  # buffer mean |s - 1/2| (measured s)
    true_gap: list[float] = field(default_factory=list)  # buffer mean |p - 1/2| (true skill)
    near_half: list[float] = field(default_factory=list)  # buffer share with 1/4 <= s <= 3/4
    label_acc: list[float] = field(default_factory=list)  # buffer labels equal to the true answer
    entropy: list[float] = field(default_factory=list)  # proposer entropy over families (nats)
    valid: list[float] = field(default_factory=list)  # share of valid proposals
    policy: np.ndarray | None = None  # the proposer's final family distribution


@dataclass
class Result:
    """The outcome of :func:`simulate`."""

    config: Config
    skills: np.ndarray  # p_f per family
    arms: dict[str, Arm]

    def share(self, arm: str, true_label: bool = False) -> float:
        """Mean share of solver groups with a non-zero advantage over the run."""
        a = self.arms[arm]
        return float(np.mean(a.informative_true if true_label else a.informative))

    def ratio(self, true_label: bool = False, baseline: str = SEEDS_VOTE, arm: str = "self-play") -> float:
        """Non-zero-advantage share of ``arm`` over ``baseline``'s."""
        return self.share(arm, true_label) / max(self.share(baseline, true_label), 1e-12)

    def final(self, arm: str, curve: str, last: int = 10) -> float:
        """Mean of a curve over the last ``last`` iterations."""
        return float(np.mean(getattr(self.arms[arm], curve)[-last:]))


class World:
    """The synthetic problems and solver (all randomness from one generator, so runs are reproducible)."""

    def __init__(self, cfg: Config, rng: np.random.Generator) -> None:
        self.cfg = cfg
        lo, hi = _logit(cfg.p_min), _logit(cfg.p_max)
        self.skills = _sigmoid(np.linspace(lo, hi, cfg.families)) if cfg.families > 1 else np.array([cfg.p_min])
        self.truth: dict[str, Truth] = {}
        self.rng = rng
        self.count = 0

    def new_problem(self, family: int, kind: str) -> Problem:
        """A fresh problem of ``family`` with a unique text."""
        rng, self.count = self.rng, self.count + 1
        skill = float(_sigmoid(_logit(self.skills[family]) + rng.normal(0.0, self.cfg.problem_noise)))
        answer = int(rng.integers(0, 1000))
        text = f"[family {family:02d}] {kind} problem #{self.count}"
        self.truth[text] = Truth(family, skill, str(answer), str(answer + 1 + int(rng.integers(0, 9))))
        return Problem(text, gold=str(answer), source="seed" if kind == "seed" else "proposed")

    def answers(self, problem: Problem, n: int) -> list[str | None]:
        """``n`` solver answers to ``problem``."""
        t, c, rng = self.truth[problem.problem], self.cfg, self.rng
        out: list[str | None] = []
        for u, v in zip(rng.random(n), rng.random(n), strict=True):
            if u < t.skill:
                out.append(t.answer)
            elif v < c.no_answer:
                out.append(None)
            elif v < c.no_answer + c.systematic:
                out.append(t.mistake)
            else:
                out.append(str(int(rng.integers(*SCATTER))))
        return out

    def label(self, problem: Problem) -> bool:
        """Vote-label ``problem`` in place (``label``, ``solve_rate``); whether it is valid (``MathDomain.label``)."""
        c = self.cfg
        result = vote(self.answers(problem, c.label_samples))
        valid = (
            result.label is not None
            and not result.timeouts
            and result.answer_share >= c.min_answer_share
            and result.share >= c.min_majority_share
        )
        problem.label, problem.solve_rate = (result.label, result.share) if valid else (None, None)
        return valid

    def group(self, problem: Problem, label: str) -> tuple[float, bool]:
        """One solver group of ``problem`` scored against ``label``: (accuracy, label is the true answer)."""
        answers = self.answers(problem, self.cfg.solver_samples)
        return sum(a == label for a in answers) / len(answers), label == self.truth[problem.problem].answer


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def simulate(
    cfg: Config | None = None, reward: RewardFn | None = None, *, progress: bool = False, arms: tuple = ARMS
) -> Result:
    """Run the arms of the simulation (see the module docstring); ``reward`` replaces the proposer reward in the
    self-play arm (default: the real :func:`~verl_selfplay.azr.domains.math.proposer_reward`)."""
    cfg = cfg or Config()
    if reward is None:

        def reward(rate: float | None, penalty: float) -> float:
            return proposer_reward(rate, penalty, invalid_reward=cfg.invalid_reward)

    out: dict[str, Arm] = {}
    skills = None
    with tqdm(total=len(arms) * cfg.iters, desc="simulating", file=sys.stderr, disable=not progress) as bar:
        for name in arms:
            # the same seed in every arm: same families, seeds, and seed labels (common random numbers)
            world = World(cfg, np.random.default_rng(cfg.seed))
            seeds = [world.new_problem(f, "seed") for f in range(cfg.families) for _ in range(cfg.seeds_per_family)]
            skills = world.skills
            if name in (SEEDS_VOTE, SEEDS_GOLD):
                out[name] = _run_seeds(cfg, world, seeds, name, bar)
            else:
                out[name] = _run_selfplay(cfg, world, seeds, reward if name == "self-play" else None, name, bar)
    return Result(cfg, skills, out)


def _run_seeds(cfg: Config, world: World, seeds: list[Problem], name: str, bar) -> Arm:
    arm = Arm(name)
    rng = random.Random(cfg.seed)
    if name == SEEDS_VOTE:  # the seeds' vote labels, as the self-play arms start with; unlabelled seeds are not drawn
        pool = [p for p in seeds if world.label(p)]
    else:
        pool = [Problem(p.problem, label=p.gold, gold=p.gold) for p in seeds]
    for _ in range(cfg.iters):
        groups = [world.group(p, p.label) for p in (rng.choice(pool) for _ in range(cfg.solve))]
        arm.informative.append(float(np.mean([0.0 < acc < 1.0 for acc, _ in groups])))
        arm.informative_true.append(float(np.mean([0.0 < acc < 1.0 and right for acc, right in groups])))
        bar.update(1)
    return arm


def _run_selfplay(cfg: Config, world: World, seeds: list[Problem], reward: RewardFn | None, name: str, bar) -> Arm:
    arm = Arm(name)
    rng = random.Random(cfg.seed)
    for p in seeds:  # seed_labels=vote
        world.label(p)
    buffer = MathBuffer("math", cap=cfg.buffer_cap, dedup=True, embed=None, tasks=list(seeds))
    logits = np.zeros(cfg.families)
    for it in range(1, cfg.iters + 1):
        # proposer: sample families, vote-label each proposal, reward, REINFORCE on whitened rewards
        pi = _softmax(logits)
        families = world.rng.choice(cfg.families, size=cfg.propose, p=pi)
        proposals = [world.new_problem(int(f), "proposed") for f in families]
        valid = [world.label(p) for p in proposals]
        arm.valid.append(float(np.mean(valid)))
        if reward is not None:
            kept = [f for f, v in zip(families, valid, strict=True) if v]
            rewards = []
            for p, f, v in zip(proposals, families, valid, strict=True):
                near = sum(g == f for g in kept) - 1 if v else 0  # other valid proposals of the same family
                penalty = cfg.similarity_penalty * near / len(kept) if v and len(kept) > 1 else 0.0
                rewards.append(reward(p.solve_rate if v else None, penalty))
            r = np.asarray(rewards, dtype=float)
            adv = (r - r.mean()) / (r.std() + 1e-6)
            grad = (adv[:, None] * (np.eye(cfg.families)[families] - pi[None, :])).mean(axis=0)
            logits = logits + cfg.lr * grad
        for p, v in zip(proposals, valid, strict=True):
            if v:
                p.measured_step = it
                buffer.add(p, it)
        # solver: targeted draws from the buffer, scored against the stored label, re-measuring s
        informative, informative_true = [], []
        if cfg.targeting:
            drawn = buffer.for_solver(cfg.solve, rng, it)
        else:
            pool = buffer.labelled()
            drawn = rng.sample(pool, min(cfg.solve, len(pool)))
            drawn += rng.choices(pool, k=cfg.solve - len(drawn))
        for p in drawn:
            acc, right = world.group(p, p.label)
            informative.append(0.0 < acc < 1.0)
            informative_true.append(0.0 < acc < 1.0 and right)
            p.solve_rate, p.measured_step = acc, it
        arm.informative.append(float(np.mean(informative)))
        arm.informative_true.append(float(np.mean(informative_true)))
        labelled = buffer.labelled()
        rates = np.array([p.solve_rate for p in labelled])
        arm.gap.append(float(np.mean(np.abs(rates - 0.5))))
        arm.near_half.append(float(np.mean((rates >= 0.25) & (rates <= 0.75))))
        arm.true_gap.append(float(np.mean([abs(world.truth[p.problem].skill - 0.5) for p in labelled])))
        arm.label_acc.append(float(np.mean([p.label == world.truth[p.problem].answer for p in labelled])))
        pi = _softmax(logits)
        arm.entropy.append(float(-(pi * np.log(pi)).sum()))
        bar.update(1)
    arm.policy = _softmax(logits)
    return arm


def plot(res: Result, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, arms = res.config, res.arms
    x = np.arange(1, cfg.iters + 1)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    colours = dict(zip(ARMS, ("C0", "C1", "C2", "C7"), strict=True))
    smooth = min(10, cfg.iters)

    def sm(v):
        return np.convolve(v, np.ones(smooth) / smooth, mode="valid")

    ax = axes[0, 0]
    for name, arm in arms.items():
        ax.plot(x[smooth - 1 :], sm(arm.informative), color=colours[name], label=name)
        if name != SEEDS_GOLD:  # gold labels are all true
            ax.plot(x[smooth - 1 :], sm(arm.informative_true), color=colours[name], linestyle=":")
    ax.set(xlabel="iteration", ylabel=f"share ({smooth}-iteration mean)", ylim=(0, 1.02))
    ax.set_title("Solver groups with 0 < acc < 1 (dotted: and a true label)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    panels = [
        (axes[0, 1], "gap", "buffer mean |s - 1/2| (dashed: true |p - 1/2|)", (0, 0.5)),
        (axes[0, 2], "near_half", "buffer share with s in [1/4, 3/4]", (0, 1.02)),
        (axes[1, 0], "entropy", f"proposer entropy (nats; uniform = {math.log(cfg.families):.2f})", None),
        (axes[1, 1], "label_acc", "buffer labels = true answer", (0, 1.02)),
    ]
    for ax, curve, title, ylim in panels:
        for name, arm in arms.items():
            if name not in BUFFER_ARMS:
                continue
            ax.plot(x, getattr(arm, curve), color=colours[name], label=name)
            if curve == "gap":
                ax.plot(x, arm.true_gap, color=colours[name], linestyle="--")
        ax.set(xlabel="iteration", ylim=ylim)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    ax = axes[1, 2]
    if "self-play" in arms and arms["self-play"].policy is not None:
        ax.plot(res.skills, arms["self-play"].policy, "o-", color=colours["self-play"], label="self-play")
    ax.axhline(1 / cfg.families, color=colours["uniform proposer"], label="uniform proposer")
    ax.set(xlabel="family skill p_f", ylabel="probability")
    ax.set_title("Final proposer distribution over families", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Simulated math self-play: {cfg.families} families, {cfg.propose} proposals (m={cfg.label_samples}) and "
        f"{cfg.solve} solver groups (G={cfg.solver_samples}) per iteration, buffer cap {cfg.buffer_cap}, seed {cfg.seed}"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def report(res: Result) -> str:
    """The printed comparison: non-zero-advantage shares and ratios, then the curves' first and last values."""
    cfg, arms = res.config, res.arms
    lines = [
        f"# {cfg.families} families, skills {cfg.p_min}..{cfg.p_max} (logit-spaced), {cfg.seeds_per_family} seeds "
        f"each; {cfg.iters} iterations of {cfg.propose} proposals (m={cfg.label_samples}) and {cfg.solve} solver "
        f"groups (G={cfg.solver_samples}); buffer cap {cfg.buffer_cap}; targeting {cfg.targeting}; seed {cfg.seed}",
        "",
        "| arm | groups with 0 < acc < 1 | ... and a true label | ratio to uniform seeds | ... gold | ratio, true label "
        "| ... gold |",
        "|---|---|---|---|---|---|---|",
    ]

    def ratio(name: str, baseline: str, true_label: bool) -> str:
        return f"{res.ratio(true_label, baseline, name):.2f}" if baseline in arms else "-"

    for name in arms:
        cells = [f"{res.share(name):.3f}", f"{res.share(name, True):.3f}"]
        cells += [ratio(name, base, true) for true in (False, True) for base in (SEEDS_VOTE, SEEDS_GOLD)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    buffer_arms = [name for name in arms if name in BUFFER_ARMS]
    lines += ["", "| curve (iteration 1 -> mean of the last 10) | " + " | ".join(buffer_arms) + " |"]
    lines.append("|---" * (1 + len(buffer_arms)) + "|")
    for curve, title in (
        ("gap", "buffer mean abs(s - 1/2)"),
        ("true_gap", "buffer mean abs(p - 1/2), true skill"),
        ("near_half", "buffer share with s in [1/4, 3/4]"),
        ("entropy", f"proposer entropy, nats (uniform {math.log(cfg.families):.2f})"),
        ("label_acc", "buffer label accuracy"),
        ("valid", "valid proposals"),
    ):
        cells = [f"{getattr(arms[n], curve)[0]:.3f} -> {res.final(n, curve):.3f}" for n in buffer_arms]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    if {"self-play", SEEDS_VOTE, SEEDS_GOLD} <= set(arms):
        lines += [
            "",
            f"non-zero-advantage solver groups, self-play / uniform seed sampling: {res.ratio():.2f} "
            f"(seeds with vote labels, as self-play's) and {res.ratio(baseline=SEEDS_GOLD):.2f} (gold labels); "
            f"counting only groups with a true label: {res.ratio(True):.2f} and {res.ratio(True, SEEDS_GOLD):.2f}",
        ]
    if {"self-play", "uniform proposer"} <= set(arms):
        lines.append(
            f"self-play / uniform proposer (the proposer reward's own share): {res.ratio(baseline='uniform proposer'):.2f}"
            f" (true label: {res.ratio(True, 'uniform proposer'):.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Config()
    for f in fields(Config):
        flag, kind = f"--{f.name.replace('_', '-')}", type(getattr(defaults, f.name))
        if kind is bool:
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            ap.add_argument(flag, type=kind, default=None)
    ap.add_argument("--png", default=str(DEFAULT_PNG), help="PNG of the curves ('' for none)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    cfg = Config(**{f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None})
    res = simulate(cfg, progress=not args.quiet)
    print(report(res))
    if args.png:
        plot(res, Path(args.png))
        print(f"plot: {args.png}")
    return res


if __name__ == "__main__":
    main()
