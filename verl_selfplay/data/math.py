"""Math question/answer files (PromptCoT, ORZ, MATH style) to verl parquet.

::

    # MATH (lighteval): the answer is the last \\boxed{} of the reference solution
    python -m verl_selfplay.data.math --input math.jsonl --out ~/data/math --question-key problem --solution-key solution
    # PromptCoT / SimpleRL style: an explicit answer field
    python -m verl_selfplay.data.math --input promptcot.jsonl --out ~/data/promptcot --question-key prompt --answer-key answer
    # ORZ: a list of two turns, the question in turn 0 and the answer in turn 1
    python -m verl_selfplay.data.math --input orz_57k.json --out ~/data/orz --question-key 0.value --answer-key 1.ground_truth.value
    # TTRL: train rows with data source "vote" (no label needed; a true answer is kept for metrics only),
    # test rows scored against the true labels
    python -m verl_selfplay.data.math --input aime.jsonl --out ~/data/aime_ttrl --data-source vote \\
        --test-input aime.jsonl --test-data-source math

Field names are dotted paths into each row (``0.value`` = field ``value`` of the row's first item).
``--test-size N`` holds out N random rows as ``test.parquet``; ``--test-input`` reads the test rows
from another file instead. Rows with an empty question, or without an answer (except for the
``vote`` data source, whose labels come from majority voting during training), are reported with
their row index and skipped.

``vote`` rows never carry a gold answer where a reward function would read it: their
``reward_model.ground_truth`` is empty, and the answer, when the input has one, is kept in
``extra_info["eval_ground_truth"]``, which only the vote-agreement metrics read
(``training/vote/label_agreement``, ``training/vote/true_acc``; see :mod:`reward_fns.vote`).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verl_selfplay.data import RowErrors, get_field, iter_progress, read_rows, write_parquet
from verl_selfplay.data.prompts import TEMPLATES, chat_messages

VOTE_SOURCES = ("vote",)  # data sources labelled online by majority vote: an answer is optional


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value.strip()
    return None


def convert(
    rows: Sequence[dict[str, Any]],
    *,
    split: str,
    data_source: str = "math",
    question_key: str = "problem",
    answer_key: str | None = "answer",
    solution_key: str | None = None,
    template: str = "r1_math",
    errors: RowErrors | None = None,
) -> list[dict[str, Any]]:
    """verl rows for ``rows``; malformed rows are reported to ``errors`` and skipped.

    >>> errs = RowErrors("demo", stream=sys.stdout)
    >>> out = convert([{"problem": "1+1?", "answer": 2}, {"problem": " ", "answer": "3"}, {"problem": "2+2?"}],
    ...               split="train", errors=errs)
    demo: row 1 skipped: empty question (key 'problem')
    demo: row 2 skipped: missing answer (key 'answer')
    >>> out[0]["reward_model"], out[0]["extra_info"]
    ({'style': 'rule', 'ground_truth': '2'}, {'split': 'train', 'index': 0, 'source_index': 0})
    >>> vote = convert([{"problem": "1+1?", "answer": 2}], split="train", data_source="vote")
    >>> vote[0]["reward_model"], vote[0]["extra_info"]["eval_ground_truth"]
    ({'style': 'rule', 'ground_truth': ''}, '2')
    """
    from reward_fns.math import extract_answer
    from reward_fns.vote import EVAL_GROUND_TRUTH_KEY

    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(sorted(TEMPLATES))}")
    errors = errors if errors is not None else RowErrors(f"{split}")
    out: list[dict[str, Any]] = []
    for i, row in enumerate(iter_progress(rows, desc=f"math {split}")):
        question = _text(get_field(row, question_key))
        if not question:
            errors.add(i, f"empty question (key {question_key!r})")
            continue
        answer: str | None = None
        if solution_key:
            solution = _text(get_field(row, solution_key))
            answer = extract_answer(solution) if solution else None
            answer = answer.strip() if isinstance(answer, str) else None
            missing = f"no final answer (\\boxed{{}}) in the solution (key {solution_key!r})"
        else:
            answer = _text(get_field(row, answer_key)) if answer_key else None
            missing = f"missing answer (key {answer_key!r})"
        if not answer and data_source not in VOTE_SOURCES:
            errors.add(i, missing)
            continue
        extra_info: dict[str, Any] = {"split": split, "index": len(out), "source_index": i}
        if data_source in VOTE_SOURCES:
            # the true answer only for the agreement metrics: a vote row is rewarded by its vote alone
            extra_info[EVAL_GROUND_TRUTH_KEY] = answer or ""
            answer = ""
        out.append(
            {
                "data_source": data_source,
                "prompt": chat_messages(template, question),
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": extra_info,
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m verl_selfplay.data.math", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help=".jsonl, .json or .parquet file")
    parser.add_argument("--out", required=True, type=Path, help="output folder (train.parquet, test.parquet)")
    parser.add_argument("--question-key", default="problem", help="dotted path of the question (default problem)")
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument("--answer-key", default="answer", help="dotted path of the final answer (default answer)")
    answer.add_argument("--solution-key", default=None, help="take the answer from the last \\boxed{} of this field")
    parser.add_argument("--data-source", default="math", help="reward_fns data source of the rows (default math)")
    parser.add_argument("--template", default="r1_math", choices=sorted(TEMPLATES), help="prompt template")
    parser.add_argument("--test-size", type=int, default=0, help="hold out this many random rows as test")
    parser.add_argument("--test-input", type=Path, default=None, help="read the test rows from this file instead")
    parser.add_argument(
        "--test-data-source", default=None, help="data source of the test rows (default: --data-source)"
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N input rows")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split and shuffling")
    args = parser.parse_args(argv)

    try:
        rows = read_rows(args.input)[: args.limit]
        test_rows = read_rows(args.test_input)[: args.limit] if args.test_input else []
    except (OSError, ValueError) as e:
        parser.error(str(e))
    if args.test_size and not args.test_input:
        if not 0 < args.test_size < len(rows):
            parser.error(f"--test-size must lie in 1..{len(rows) - 1} for {len(rows)} input rows")
        order = list(range(len(rows)))
        random.Random(args.seed).shuffle(order)
        held = set(order[: args.test_size])
        test_rows = [r for i, r in enumerate(rows) if i in held]
        rows = [r for i, r in enumerate(rows) if i not in held]
    common = dict(
        question_key=args.question_key,
        answer_key=None if args.solution_key else args.answer_key,
        solution_key=args.solution_key,
        template=args.template,
    )
    written = 0
    for split, split_rows, source in (
        ("train", rows, args.data_source),
        ("test", test_rows, args.test_data_source or args.data_source),
    ):
        if not split_rows:
            continue
        errors = RowErrors(f"math {split}")
        out = convert(split_rows, split=split, data_source=source, errors=errors, **common)  # type: ignore[arg-type]
        print(errors.summary(len(split_rows)), file=sys.stderr)
        if out:
            path = write_parquet(out, args.out / f"{split}.parquet")
            print(f"wrote {len(out)} rows to {path}", file=sys.stderr)
            written += len(out)
    if not written:
        print("no valid rows: nothing written", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
