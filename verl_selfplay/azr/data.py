"""AZR's fixed data files: a validation set of held-out code-reasoning tasks, and the placeholder training file.

``python -m verl_selfplay.azr.data --out DIR [--prompt-style reference|compact] [--repeats N]``

- ``DIR/test.parquet``: solver rows of the held-out tasks (:func:`verl_selfplay.azr.seeds.validation_tasks`, never
  in a buffer) for every task type, routed to the AZR agent loop and scored by the ``azr_*`` data sources, so
  ``trainer.test_freq`` reports solver accuracy on fixed tasks (``val-core/azr_deduction/acc/mean@1`` ...).
- ``DIR/train.parquet``: the seed tasks as solver rows. verl needs ``data.train_files`` to build its dataloader;
  the AZR trainer never draws from it (it builds each step's rows from its buffers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verl_selfplay.azr.buffers import Task
from verl_selfplay.azr.config import PROMPT_STYLES, TASKS
from verl_selfplay.azr.prompts import DATA_SOURCES, solver_ground_truth, solver_prompt
from verl_selfplay.azr.seeds import seed_tasks, validation_tasks

AGENT_NAME = "azr"


def solver_rows(tasks: dict[str, list[Task]], split: str, style: str, visible: int = 5) -> list[dict[str, Any]]:
    """verl RL rows (``prompt``, ``data_source``, ``reward_model``, ``extra_info``, ``agent_name``...) per task."""
    rows = []
    for task_type in TASKS:
        for task in tasks.get(task_type, []):
            truth, info = solver_ground_truth(task, visible=visible)
            rows.append(
                {
                    "data_source": DATA_SOURCES[task_type],
                    "prompt": [{"role": "user", "content": solver_prompt(task, visible=visible, style=style)}],
                    "ability": "code",
                    "reward_model": {"style": "rule", "ground_truth": truth},
                    "extra_info": {**info, "reference_program": "", "split": split, "index": len(rows)},
                    "agent_name": AGENT_NAME,
                    "azr_role": "solve",
                    "azr_task": task_type,
                }
            )
    return rows


def write(out: str | Path, style: str = "reference", repeats: int = 1) -> dict[str, Path]:
    """Write ``train.parquet`` and ``test.parquet`` into ``out``; returns their paths."""
    import pandas as pd

    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; valid: {', '.join(PROMPT_STYLES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.parquet", "test": out / "test.parquet"}
    pd.DataFrame(solver_rows(seed_tasks(), "train", style)).to_parquet(paths["train"], index=False)
    test = solver_rows(validation_tasks(), "test", style) * max(1, repeats)
    pd.DataFrame(test).to_parquet(paths["test"], index=False)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.azr.data", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--prompt-style", default="reference", choices=PROMPT_STYLES)
    parser.add_argument("--repeats", type=int, default=1, help="copies of the validation set (more samples)")
    args = parser.parse_args(argv)
    for split, path in write(args.out, args.prompt_style, args.repeats).items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
