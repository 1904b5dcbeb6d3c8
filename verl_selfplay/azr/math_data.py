"""Math self-play's fixed data files: the validation set (problems with gold answers) and the placeholder training file.

``python -m verl_selfplay.azr.math_data --seeds SEEDS --val VAL --out DIR [--prompt-style reference|compact]``

- ``DIR/test.parquet``: solver rows of the ``VAL`` problems (any file
  :func:`~verl_selfplay.azr.domains.math.load_seed_problems` reads: JSON lines with ``problem``/``question``/
  ``prompt`` and ``answer``, or a verl RL parquet), in the math domain's solver prompt of the run's
  ``azr.prompt_style``, routed to the AZR agent loop and scored by data source ``math`` against the gold answer, so
  ``trainer.test_freq`` reports ``val-core/math/acc/mean@1``. Problems without a gold answer are skipped.
- ``DIR/train.parquet``: the ``SEEDS`` problems as solver rows. verl needs ``data.train_files`` to build its
  dataloader; self-play never draws from it (the seeds enter the run through ``selfplay_math.seed_file``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verl_selfplay.azr.config import PROMPT_STYLES
from verl_selfplay.azr.domains.math import TASK, Problem, load_seed_problems, solver_prompt

AGENT_NAME = "azr"
DATA_SOURCE = "math"  # reward_fns.compute_score scores it against reward_model.ground_truth


def solver_rows(problems: Sequence[Problem], split: str, style: str) -> list[dict[str, Any]]:
    """verl RL rows of ``problems`` (``prompt``, ``data_source``, ``reward_model``, ``extra_info``,
    ``agent_name``...): the math domain's solver prompt, scored against ``problem.gold``.

    >>> row = solver_rows([Problem("What is 3+4?", gold="7")], "test", "compact")[0]
    >>> row["prompt"][0]["content"], row["reward_model"]["ground_truth"], row["azr_role"], row["agent_name"]
    ('User: What is 3+4?\\nAssistant: <think>', '7', 'solve', 'azr')
    """
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; valid: {', '.join(PROMPT_STYLES)}")
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": [{"role": "user", "content": solver_prompt(p, style=style)}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": p.gold},
            "extra_info": {"split": split, "index": i, "problem": p.problem},
            "agent_name": AGENT_NAME,
            "azr_role": "solve",
            "azr_task": TASK,
        }
        for i, p in enumerate(problems)
    ]


def write(
    out: str | Path, seeds: Sequence[Problem], val: Sequence[Problem], style: str = "reference"
) -> dict[str, Path]:
    """Write ``train.parquet`` (``seeds``) and ``test.parquet`` (the ``val`` problems with a gold answer) into
    ``out``; returns their paths. ``ValueError`` when no validation problem has a gold answer."""
    import pandas as pd

    graded = [p for p in val if p.gold]
    if not graded:
        raise ValueError("no validation problem has a gold answer (field answer or ground_truth)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.parquet", "test": out / "test.parquet"}
    pd.DataFrame(solver_rows(seeds, "train", style)).to_parquet(paths["train"], index=False)
    pd.DataFrame(solver_rows(graded, "test", style)).to_parquet(paths["test"], index=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.azr.math_data", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True, help="the seed problems (selfplay_math.seed_file)")
    parser.add_argument("--val", required=True, help="validation problems with gold answers (e.g. MATH-500)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--prompt-style", default="reference", choices=PROMPT_STYLES)
    args = parser.parse_args(argv)
    try:
        paths = write(args.out, load_seed_problems(args.seeds), load_seed_problems(args.val), args.prompt_style)
    except ValueError as e:  # a bad input file: say which, without a stack trace
        print(f"error: {e}", file=sys.stderr)
        return 2
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
