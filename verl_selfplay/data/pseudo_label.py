"""Label unlabelled prompts by majority vote over sampled responses (PromptCoT's vote labelling).

PromptCoT (Zhao et al. 2025, arXiv 2503.02324) synthesises prompts and takes their answers from a
teacher's responses; the zero-RL note that accompanies it (shared/seeds/000) observes that voting
over several sampled responses gives more accurate labels. This tool does that offline: each input
row holds a question and a list of responses (e.g. from ``vllm`` or verl's generation), the final
answers are extracted with :func:`reward_fns.math.extract_answer`, equivalent answers are pooled
by :func:`reward_fns.vote.majority`, and the winner becomes ``reward_model.ground_truth``.

::

    python -m verl_selfplay.data.pseudo_label --input samples.jsonl --out ~/data/voted \\
        --question-key prompt --responses-key responses --min-votes 3 --min-ratio 0.5

Rows with an empty question, no responses, or no answer in any response are reported with their
row index and skipped; so are rows whose winner has fewer than ``--min-votes`` votes or less than
``--min-ratio`` of all responses (reported as low agreement). ``extra_info`` records ``vote_count``,
``vote_total`` and ``vote_ratio``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verl_selfplay.data import RowErrors, get_field, iter_progress, read_rows, write_parquet
from verl_selfplay.data.prompts import TEMPLATES, chat_messages


def vote_label(
    rows: Sequence[dict[str, Any]],
    *,
    question_key: str = "prompt",
    responses_key: str = "responses",
    data_source: str = "math",
    template: str = "r1_math",
    min_votes: int = 1,
    min_ratio: float = 0.0,
    errors: RowErrors | None = None,
) -> list[dict[str, Any]]:
    """verl rows labelled by majority vote; malformed or low-agreement rows go to ``errors``.

    >>> errs = RowErrors("demo", stream=sys.stdout)
    >>> rows = [{"prompt": "1+1?", "responses": ["\\\\boxed{2}", "so \\\\boxed{2}", "\\\\boxed{3}"]},
    ...         {"prompt": "x?", "responses": ["no idea"]}]
    >>> out = vote_label(rows, errors=errs)
    demo: row 1 skipped: no answer in any of 1 response(s)
    >>> out[0]["reward_model"]["ground_truth"], out[0]["extra_info"]["vote_count"], out[0]["extra_info"]["vote_total"]
    ('2', 2, 3)
    """
    from reward_fns.math import extract_answer
    from reward_fns.vote import majority

    if min_votes < 1:
        raise ValueError(f"--min-votes must be >= 1, got {min_votes}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"--min-ratio must lie in [0, 1], got {min_ratio}")
    errors = errors if errors is not None else RowErrors("pseudo_label")
    out: list[dict[str, Any]] = []
    for i, row in enumerate(iter_progress(rows, desc="pseudo_label")):
        question = get_field(row, question_key)
        if not isinstance(question, str) or not question.strip():
            errors.add(i, f"empty question (key {question_key!r})")
            continue
        responses = get_field(row, responses_key)
        if isinstance(responses, str):
            responses = [responses]
        if not isinstance(responses, list | tuple) or not responses:
            errors.add(i, f"no responses (key {responses_key!r})")
            continue
        answers = []
        for response in responses:
            answer = extract_answer(response) if isinstance(response, str) else None
            if isinstance(answer, str) and answer.strip():
                answers.append(answer.strip())
        if not answers:
            errors.add(i, f"no answer in any of {len(responses)} response(s)")
            continue
        label, count = majority(answers)
        ratio = count / len(responses)
        if count < min_votes or ratio < min_ratio:
            errors.add(i, f"low agreement: {count}/{len(responses)} votes for {label!r}")
            continue
        out.append(
            {
                "data_source": data_source,
                "prompt": chat_messages(template, question),
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(label)},
                "extra_info": {
                    "split": "train",
                    "index": len(out),
                    "source_index": i,
                    "vote_count": int(count),
                    "vote_total": len(responses),
                    "vote_ratio": ratio,
                },
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m verl_selfplay.data.pseudo_label", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--input", required=True, type=Path, help=".jsonl, .json or .parquet file")
    parser.add_argument("--out", required=True, type=Path, help="output folder (train.parquet)")
    parser.add_argument("--question-key", default="prompt", help="dotted path of the question (default prompt)")
    parser.add_argument("--responses-key", default="responses", help="dotted path of the list of responses")
    parser.add_argument("--data-source", default="math", help="reward_fns data source of the rows (default math)")
    parser.add_argument("--template", default="r1_math", choices=sorted(TEMPLATES), help="prompt template")
    parser.add_argument("--min-votes", type=int, default=1, help="minimum votes for the winning answer")
    parser.add_argument("--min-ratio", type=float, default=0.0, help="minimum share of responses for the winner")
    args = parser.parse_args(argv)
    try:
        rows = read_rows(args.input)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    errors = RowErrors("pseudo_label")
    try:
        out = vote_label(
            rows,
            question_key=args.question_key,
            responses_key=args.responses_key,
            data_source=args.data_source,
            template=args.template,
            min_votes=args.min_votes,
            min_ratio=args.min_ratio,
            errors=errors,
        )
    except ValueError as e:
        parser.error(str(e))
    print(errors.summary(len(rows)), file=sys.stderr)
    if not out:
        print("no row could be labelled: nothing written", file=sys.stderr)
        return 1
    path = write_parquet(out, args.out / "train.parquet")
    print(f"wrote {len(out)} rows to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
