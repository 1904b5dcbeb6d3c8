"""Prompt Curriculum Learning (PCL): the selection maths, its configuration and the candidate pool.

PCL (Gao et al. 2025, "Prompt Curriculum Learning for Efficient LLM Post-Training", arXiv 2510.01135)
draws ``k * m`` candidate prompts each step, predicts every candidate's expected reward under the current
policy with a value model V(x) (one forward pass, no generation), keeps the ``m`` candidates whose V(x) is
closest to ``tau``, rolls those out and trains on them, then fits V by MSE to the observed mean rewards.

This module is pure Python + NumPy (no torch, verl or Ray) so that every rule here is testable on its own:

- :func:`select`: the ``m`` candidates closest to ``tau``, ties broken by candidate position;
- :class:`PCLConfig`: the ``+pcl.*`` config namespace, validated at start-up with errors that name the key;
- :func:`check_target_range`: refuses a value model bounded to (0, 1) fitted to a metric that leaves [0, 1];
- :class:`CandidatePool`: a checkpointable ring over the training set from which each step takes its candidates;
  unselected candidates stay in it and are scored again on the next lap instead of being dropped;
- :func:`effective_ratio`, :func:`calibration_error`: the step metrics.

The verl adapter that wires these into verl's v1 trainer is :mod:`verl_selfplay.pcl.trainer`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_K",
    "DEFAULT_TAU",
    "CandidatePool",
    "PCLConfig",
    "calibration_error",
    "check_batch_fits",
    "check_target_range",
    "effective_ratio",
    "select",
]

# Candidate multiplier: k*m candidates are scored per step; PCL's default k = 4 (arXiv 2510.01135, method, as
# reported by summaries of the paper; its full text was not accessible to us).
DEFAULT_K = 4
# Target pass rate: prompts the policy solves about half the time give the strongest learning signal
# (arXiv 2510.01135, abstract: "roughly a 50% chance of success"); PCL's tau = 0.5.
DEFAULT_TAU = 0.5
# kept in sync with value_model.VALUE_MODELS + WORKER_VALUE_MODELS (a test checks it)
VALUE_MODEL_NAMES = ("embedding", "llm", "llm_driver")


def select(predictions: Sequence[float] | np.ndarray, m: int, tau: float = DEFAULT_TAU) -> np.ndarray:
    """Positions of the ``m`` predictions closest to ``tau``, closest first.

    Ties (equal distance to ``tau``) go to the lower position, so the result is deterministic and an
    untrained value model that predicts the same value everywhere keeps the candidates' own order.
    Non-finite predictions (NaN, inf) count as infinitely far from ``tau``: they are chosen last.

    >>> select([0.9, 0.5, 0.1, 0.45, 0.55], m=3, tau=0.5).tolist()
    [1, 3, 4]
    >>> select([0.25, 0.75, float("nan"), 0.25], m=3, tau=0.5).tolist()
    [0, 1, 3]
    """
    preds = np.asarray(predictions, dtype=np.float64)
    if preds.ndim != 1:
        raise ValueError(f"predictions must be a 1-D sequence, got shape {preds.shape}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise TypeError(f"m must be an int, got {type(m).__name__}")
    if not 1 <= m <= len(preds):
        raise ValueError(f"m={m} must be between 1 and the number of candidates ({len(preds)})")
    _check_tau(tau, "tau")
    distance = np.abs(preds - float(tau))
    distance[~np.isfinite(distance)] = np.inf
    order = np.lexsort((np.arange(len(preds)), distance))  # primary key: distance; secondary: position
    return order[:m].astype(np.int64)


def _check_tau(tau: Any, key: str) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)):
        raise TypeError(f"{key} must be a number in [0, 1], got {tau!r}")
    tau = float(tau)
    if not (math.isfinite(tau) and 0.0 <= tau <= 1.0):
        raise ValueError(f"{key}={tau} is outside [0, 1]; it is the target pass rate (PCL uses 0.5)")
    return tau


def check_batch_fits(train_batch_size: int, dataset_size: int) -> None:
    """Fail when one step needs more distinct prompts (m) than the training set holds.

    >>> check_batch_fits(4, 10)
    >>> check_batch_fits(16, 10)
    Traceback (most recent call last):
    ...
    ValueError: data.train_batch_size=16 (PCL's m) is larger than the training set (10 prompts); lower data.train_batch_size or add data
    """
    if train_batch_size > dataset_size:
        raise ValueError(
            f"data.train_batch_size={train_batch_size} (PCL's m) is larger than the training set "
            f"({dataset_size} prompts); lower data.train_batch_size or add data"
        )


@dataclass(frozen=True)
class PCLConfig:
    """The ``+pcl.*`` config namespace.

    - ``enable``: select prompts with PCL (``false`` makes the ``pcl`` trainer behave as verl's ``sync``).
    - ``k``: candidates per kept prompt; each step scores ``k * data.train_batch_size`` candidates.
    - ``tau``: target predicted reward (pass rate) in [0, 1].
    - ``value_model``: ``embedding`` (frozen sentence encoder + online head, CPU), ``llm`` (the paper's LLM value
      model on verl's worker group, :mod:`verl_selfplay.pcl.value_worker`) or ``llm_driver`` (the same kind of
      model in the driver process: toy sizes only).
    - ``value_model_kwargs``: options for :func:`verl_selfplay.pcl.value_model.build_value_model` or, for ``llm``,
      :func:`verl_selfplay.pcl.value_worker.check_value_model`.
    - ``metric``: what V is fitted to, per prompt the mean over its rollouts: a ``reward_extra_info`` key
      (default ``acc``, the 0/1 correctness every ``reward_fns`` scorer returns, so V predicts a pass rate as in
      PCL, where V(x) estimates p(x) = E[r(x, y)] for a binary r) or ``reward`` (the trajectory reward, verl's
      ``rm_scores``; under ``reward_fns``' schemes it leaves [0, 1], e.g. 0..2 under ``r1``, so it needs
      ``pcl.value_model_kwargs.bounded=false``; see :func:`check_target_range`).
    - ``seed``: shuffling seed of the candidate pool (default: ``data.seed``, else 1 like verl's sampler).

    >>> PCLConfig.from_mapping({"k": 2, "tau": 0.3}).k
    2
    >>> PCLConfig.from_mapping({"tau": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: pcl.tau=1.5 is outside [0, 1]; it is the target pass rate (PCL uses 0.5)
    """

    enable: bool = True
    k: int = DEFAULT_K
    tau: float = DEFAULT_TAU
    value_model: str = "embedding"
    value_model_kwargs: dict[str, Any] = field(default_factory=dict)
    metric: str = "acc"
    seed: int | None = None

    @property
    def bounded(self) -> bool:
        """Whether the value model's output is squashed to (0, 1) (``pcl.value_model_kwargs.bounded``, default on)."""
        return bool(self.value_model_kwargs.get("bounded", True))

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> PCLConfig:
        """Validate a ``pcl`` mapping (an OmegaConf node or a dict); errors name the offending ``pcl.*`` key."""
        cfg = dict(cfg or {})
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(cfg) - set(valid))
        if unknown:
            raise ValueError(f"unknown key pcl.{unknown[0]}; valid keys: {', '.join('pcl.' + v for v in valid)}")
        out = cls()
        enable = cfg.get("enable", out.enable)
        if not isinstance(enable, bool):
            raise TypeError(f"pcl.enable must be true or false, got {enable!r}")
        k = cfg.get("k", out.k)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"pcl.k must be an integer >= 1, got {k!r}")
        if k < 1:
            raise ValueError(f"pcl.k={k} must be >= 1 (k*m candidates are scored per step; PCL uses 4)")
        tau = _check_tau(cfg.get("tau", out.tau), "pcl.tau")
        name = cfg.get("value_model", out.value_model)
        if name not in VALUE_MODEL_NAMES:
            raise ValueError(f"unknown pcl.value_model {name!r}; valid: {', '.join(VALUE_MODEL_NAMES)}")
        kwargs = cfg.get("value_model_kwargs", None) or {}
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"pcl.value_model_kwargs must be a mapping of options, got {kwargs!r}")
        metric = cfg.get("metric", out.metric)
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"pcl.metric must be 'reward' or a reward_extra_info key such as 'acc', got {metric!r}")
        seed = cfg.get("seed", out.seed)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"pcl.seed must be an integer, got {seed!r}")
        return cls(
            enable=enable,
            k=int(k),
            tau=tau,
            value_model=name,
            value_model_kwargs=dict(kwargs),
            metric=metric,
            seed=None if seed is None else int(seed),
        )


def check_target_range(metric: str, bounded: bool, low: float, high: float, source: str) -> None:
    """Refuse fitting a value model bounded to (0, 1) to ``metric`` values in ``[low, high]`` outside [0, 1].

    Such a head can never reach the targets, so its predictions saturate and PCL's selection around ``tau``
    (a pass rate) means nothing. ``source`` says how the range is known (the reward scheme at start-up, or
    the rewards observed at a step).

    >>> check_target_range("acc", True, 0.0, 1.0, "observed")
    >>> check_target_range("reward", False, 0.0, 2.0, "observed")
    >>> check_target_range("reward", True, 0.0, 2.0, "scheme r1")
    Traceback (most recent call last):
    ...
    ValueError: pcl.metric='reward' takes values in [0, 2] (scheme r1), outside the (0, 1) range of the value model's sigmoid head; set pcl.metric=acc (a 0/1 pass-rate key of reward_extra_info) or +pcl.value_model_kwargs.bounded=false
    """
    if bounded and (low < 0.0 or high > 1.0):
        raise ValueError(
            f"pcl.metric={metric!r} takes values in [{low:g}, {high:g}] ({source}), outside the (0, 1) range of "
            "the value model's sigmoid head; set pcl.metric=acc (a 0/1 pass-rate key of reward_extra_info) or "
            "+pcl.value_model_kwargs.bounded=false"
        )


class CandidatePool:
    """A ring over the training set from which each step takes its candidates; no prompt ever leaves it.

    The ring is visited in laps, each a fresh shuffle of the whole training set (lap ``e``'s order is a function
    of ``(seed, e)``). :meth:`draw` peeks at the next ``count`` prompts of the lap, crossing into the next lap when
    the current one runs out (without repeating a prompt within one draw); :meth:`commit` advances past them.
    Every candidate, kept or not, stays in the ring: an unselected prompt is returned to the pool and scored again
    one lap later, by a value model that has learned more by then, instead of being dropped. Each lap offers
    every prompt exactly once, so with ``count = k * m`` a lap lasts ``N / (k * m)`` steps and one verl epoch
    (``N / m`` steps) scores every prompt ``k`` times.

    An always-too-easy prompt is therefore never forced into training, and it is never lost either; a pool that
    instead made every prompt wait until it had been trained on would fill up with exactly the prompts PCL keeps
    rejecting and push the step's candidates back toward uniform sampling.

    The state is plain Python (:meth:`state_dict`).

    >>> pool = CandidatePool(6, seed=0, shuffle=False)
    >>> pool.draw(4)
    [0, 1, 2, 3]
    >>> pool.commit([0, 1, 2, 3], selected=[1, 3])  # positions: prompts 1 and 3 are trained on
    >>> pool.draw(4)  # the rest of lap 0, then lap 1 (prompts 0 and 2 come round again)
    [4, 5, 0, 1]
    """

    def __init__(self, size: int, seed: int = 1, shuffle: bool = True) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"the candidate pool needs at least one prompt, got size={size!r}")
        self.size = int(size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.lap = 0
        self.offered = 0  # candidates offered so far (all laps)
        self.trained = 0  # of which selected for training
        self._remaining: list[int] = self._order(0)  # the current lap's prompts not offered yet, in order

    def _order(self, lap: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        return np.random.default_rng([self.seed, lap]).permutation(self.size).tolist()

    def __len__(self) -> int:
        """Prompts of the current lap not offered yet."""
        return len(self._remaining)

    def _plan(self, count: int) -> tuple[list[int], list[int]]:
        """(candidates, the next lap's order minus the candidates taken from it)."""
        count = min(int(count), self.size)
        out = self._remaining[:count]
        if len(out) == count:
            return out, []
        taken = set(out)
        nxt = self._order(self.lap + 1)
        extra = [i for i in nxt if i not in taken][: count - len(out)]
        extra_set = set(extra)
        return out + extra, [i for i in nxt if i not in extra_set]

    def draw(self, count: int) -> list[int]:
        """The next ``min(count, size)`` distinct candidates; the pool is unchanged until :meth:`commit`."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        return self._plan(count)[0]

    def commit(self, candidates: Sequence[int], selected: Iterable[int]) -> None:
        """Advance past ``candidates`` (what :meth:`draw` just returned; checked); ``selected`` are the positions
        kept for training, counted in :attr:`trained`. Unselected candidates stay in the ring."""
        candidates = [int(c) for c in candidates]
        if not candidates:
            raise ValueError("commit() needs the candidates of a draw()")
        planned, next_lap = self._plan(len(candidates))
        if planned != candidates:
            raise ValueError("commit() got candidates that are not the pool's current draw; call draw() again")
        chosen = {int(p) for p in selected}
        if any(not 0 <= p < len(candidates) for p in chosen):
            raise ValueError(f"selected positions must lie in [0, {len(candidates)}), got {sorted(chosen)}")
        if len(candidates) <= len(self._remaining):
            self._remaining = self._remaining[len(candidates) :]
        else:  # the draw finished this lap and started the next one
            self.lap += 1
            self._remaining = next_lap
        self.offered += len(candidates)
        self.trained += len(chosen)

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state; :meth:`load_state_dict` of it restores the pool exactly."""
        return {
            "size": self.size,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "lap": self.lap,
            "offered": self.offered,
            "trained": self.trained,
            "remaining": list(self._remaining),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict` (for a data set of the same size)."""
        if int(state["size"]) != self.size:
            raise ValueError(
                f"the checkpointed PCL pool covers {state['size']} prompts but the training set now has "
                f"{self.size}; resume with the same data.train_files"
            )
        self.seed = int(state["seed"])
        self.shuffle = bool(state["shuffle"])
        self.lap = int(state["lap"])
        self.offered = int(state["offered"])
        self.trained = int(state["trained"])
        self._remaining = [int(i) for i in state["remaining"]]


def effective_ratio(group_rewards: Iterable[Sequence[float]]) -> float:
    """Share of prompt groups whose rewards are not all equal, i.e. whose GRPO advantages are not all zero.

    For 0/1 rewards this is the fraction of prompts with 0 < accuracy < 1. NaN rewards are ignored; groups with
    fewer than two finite rewards count as not effective.

    >>> effective_ratio([[1, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1]])
    0.5
    """
    groups = [np.asarray(g, dtype=np.float64) for g in group_rewards]
    if not groups:
        return float("nan")
    hits = 0
    for g in groups:
        g = g[np.isfinite(g)]
        hits += int(g.size >= 2 and float(g.max()) != float(g.min()))
    return hits / len(groups)


def calibration_error(predicted: Sequence[float], actual: Sequence[float], n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean over equal-width bins of predicted value in [0, 1]
    of |mean prediction - mean observed reward|. Pairs with a non-finite value are ignored.

    >>> calibration_error([0.1, 0.1, 0.9, 0.9], [0.0, 0.2, 1.0, 0.8])
    0.0
    >>> round(calibration_error([0.2, 0.2], [0.5, 0.7]), 6)
    0.4
    """
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if p.shape != a.shape:
        raise ValueError(f"predicted and actual differ in shape: {p.shape} vs {a.shape}")
    ok = np.isfinite(p) & np.isfinite(a)
    p, a = p[ok], a[ok]
    if p.size == 0:
        return float("nan")
    bins = np.clip((np.clip(p, 0.0, 1.0) * n_bins).astype(np.int64), 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        mask = bins == b
        total += mask.sum() * abs(float(p[mask].mean()) - float(a[mask].mean()))
    return float(total / p.size)
