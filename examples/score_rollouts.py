#!/usr/bin/env python3
"""Score a JSONL file of rollouts with ``reward_fns`` alone: no torch, ray or verl.

Each input line is a JSON object with ``data_source``, ``response`` and ``ground_truth``, and
optionally ``extra_info`` (e.g. ``{"scheme": "simplerl"}`` or ``{"majority_label": "0.5"}``); other
fields are kept. Each output line is the input row plus ``line`` (its line number) and ``result``
(``reward_fns.compute_score``'s dict), or ``row_error`` when the row could not be scored (missing
field, unknown data source, bad JSON): such rows are reported with their line number and
counted, never fatal. A summary (mean score, accuracy, format rate, per data source) is printed.

    python examples/score_rollouts.py                    # scores examples/sample_rollouts.jsonl
    python examples/score_rollouts.py --input rollouts.jsonl --output scored.jsonl --scheme simplerl

``--scheme`` overrides every row's scheme; without it each row uses ``extra_info["scheme"]`` or its
data source's default (see ``reward_fns.compute_score``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reward_fns import SCHEMES, compute_score

SAMPLE = Path(__file__).resolve().parent / "sample_rollouts.jsonl"
REQUIRED = ("data_source", "response", "ground_truth")


def score_row(row: Any, scheme: str | None = None) -> dict[str, Any]:
    """``compute_score``'s result for one parsed row; raises ``ValueError`` naming what is wrong.

    >>> score_row({"data_source": "kk_logic", "response": "<answer>x</answer>",
    ...            "ground_truth": {"solution_text_format": "(1) Zoey is a knight"}})["score"]
    -3.0
    >>> score_row({"data_source": "kk_logic", "response": "x"})
    Traceback (most recent call last):
    ...
    ValueError: missing field 'ground_truth' (a row needs data_source, response, ground_truth)
    """
    if not isinstance(row, dict):
        raise ValueError(f"a row must be a JSON object, got {type(row).__name__}")
    for key in REQUIRED:
        if key not in row:
            raise ValueError(f"missing field {key!r} (a row needs {', '.join(REQUIRED)})")
    extra_info = row.get("extra_info")
    if extra_info is not None and not isinstance(extra_info, dict):
        raise ValueError(f"extra_info must be a JSON object, got {type(extra_info).__name__}")
    kwargs = {"scheme": scheme} if scheme else {}
    return compute_score(row["data_source"], row["response"], row["ground_truth"], extra_info, **kwargs)


def _stats(results: list[dict[str, Any]]) -> dict[str, float]:
    n = len(results)
    return {
        "rows": n,
        "mean_score": sum(r["score"] for r in results) / n if n else 0.0,
        "accuracy": sum(r["acc"] for r in results) / n if n else 0.0,
        "format_rate": sum(bool(r["format_ok"]) for r in results) / n if n else 0.0,
        "timeouts": sum(bool(r["timeout"]) for r in results),
        "errors": sum(bool(r["error"]) for r in results),
    }


def summarize(scored: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Overall and per-data-source stats of ``(data_source, result)`` pairs.

    >>> s = summarize([("math", {"score": 2.0, "acc": 1.0, "format_ok": True, "timeout": False, "error": ""}),
    ...                ("math", {"score": 0.0, "acc": 0.0, "format_ok": False, "timeout": True, "error": ""})])
    >>> s["all"]["mean_score"], s["all"]["accuracy"], s["all"]["format_rate"], s["by_source"]["math"]["timeouts"]
    (1.0, 0.5, 0.5, 1)
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for source, result in scored:
        groups.setdefault(source, []).append(result)
    return {
        "all": _stats([r for rs in groups.values() for r in rs]),
        "by_source": {source: _stats(rs) for source, rs in sorted(groups.items())},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a table, one line per data source and one for all rows."""
    header = f"{'data_source':<24}{'rows':>6}{'mean score':>12}{'accuracy':>10}{'format rate':>13}{'timeouts':>10}{'errors':>8}"
    lines = [header, "-" * len(header)]
    for name, s in [*summary["by_source"].items(), ("all", summary["all"])]:
        lines.append(
            f"{name:<24}{s['rows']:>6}{s['mean_score']:>12.3f}{s['accuracy']:>10.3f}"
            f"{s['format_rate']:>13.3f}{s['timeouts']:>10}{s['errors']:>8}"
        )
    return "\n".join(lines)


def _progress(items: list[str]) -> Iterable[str]:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with the verl extra; reward_fns alone does not need it
        return items
    return tqdm(items, desc="scoring", unit="row", disable=None, file=sys.stderr)


def score_file(input_path: Path, output_path: Path, scheme: str | None = None) -> tuple[dict[str, Any], list[int]]:
    """Score every row of ``input_path`` into ``output_path``; returns (summary, line numbers of bad rows)."""
    scored: list[tuple[str, dict[str, Any]]] = []
    bad: list[int] = []
    lines = input_path.read_text(encoding="utf-8").splitlines()
    with output_path.open("w", encoding="utf-8") as out:
        for number, text in enumerate(_progress(lines), 1):
            if not text.strip():
                continue
            row: Any = None
            try:
                row = json.loads(text)
                result = score_row(row, scheme)
            except Exception as e:  # a bad row is reported and counted, never fatal
                bad.append(number)
                if isinstance(e, json.JSONDecodeError):
                    message = f"not a JSON line: {e}"
                else:
                    message = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
                print(f"{input_path}:{number}: bad row: {message}", file=sys.stderr)
                record = dict(row) if isinstance(row, dict) else {"raw": text}
                record.update(line=number, row_error=message)
            else:
                scored.append((str(row["data_source"]), result))
                record = {**row, "line": number, "result": result}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return summarize(scored), bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=SAMPLE, help=f"rollouts JSONL (default: {SAMPLE})")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("scored_rollouts.jsonl"),
        help="per-row results JSONL (default: %(default)s)",
    )
    parser.add_argument("--scheme", choices=SCHEMES, help="override every row's scoring scheme")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"--input {args.input} is not a file")

    summary, bad = score_file(args.input, args.output, args.scheme)
    total = summary["all"]["rows"] + len(bad)
    print(f"scored {summary['all']['rows']} of {total} rows from {args.input} -> {args.output}")
    if bad:
        print(f"bad rows: {len(bad)} (lines {', '.join(map(str, bad))})")
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
