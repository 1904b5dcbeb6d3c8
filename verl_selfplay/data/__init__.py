"""Data preparation: parquet files in verl's RL dataset format, with progress bars (command-line tools).
Knights & Knaves puzzles, math sets with R1/SimpleRL templates, offline majority-vote pseudo-labels, and math
problems proposed and vote-labelled by a fixed model (offline math self-play).
No override turns it on: recipes pass its output to ``data.train_files`` / ``data.val_files``.

Each row has the columns verl's ``RLHFDataset`` reads (``verl/utils/dataset/rl_dataset.py``):
``data_source`` (which selects the scorer in :func:`reward_fns.compute_score`), ``prompt`` (a chat,
see :mod:`verl_selfplay.data.prompts`), ``ability``, ``reward_model`` (``{"style": "rule",
"ground_truth": ...}``) and ``extra_info`` (``split``, ``index`` and per-dataset details).

Command lines::

    python -m verl_selfplay.data.knights_knaves --out DIR --people 3-7 --train N --test M [--curriculum]
    python -m verl_selfplay.data.math --input FILE.jsonl|json|parquet --out DIR [--question-key K --answer-key K]
    python -m verl_selfplay.data.pseudo_label --input FILE --out DIR [--responses-key responses]
    python -m verl_selfplay.data.propose --model DIR --seeds FILE --out DIR [--n-problems N --label-samples M]

Malformed input rows (missing answer, empty prompt) are reported with their row index and skipped;
the number skipped is printed at the end.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_MISSING = object()


def get_field(row: Any, path: str) -> Any:
    """The value at a dotted ``path`` in nested dicts/lists (``"1.ground_truth.value"``), or ``None``.

    >>> get_field({"a": [{"b": 1}, {"b": 2}]}, "a.1.b")
    2
    >>> get_field({"a": 1}, "a.b") is None
    True
    """
    value = row
    for part in path.split("."):
        if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy arrays out of parquet
            value = value.tolist()
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list | tuple) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return None
    return value


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``, ``.json`` (a list of objects) or ``.parquet`` file.

    A ``.jsonl`` line that is not valid JSON becomes an empty row, so that it is reported as
    malformed with its index instead of stopping the whole run.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    logger.warning("%s line %d: invalid JSON (%s)", path, i + 1, e)
                    rows.append({})
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"data": [...]} or a single object
            data = next((v for v in data.values() if isinstance(v, list)), [data])
        return list(data)
    if suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    raise ValueError(f"unsupported input format {suffix!r} for {path}; use .jsonl, .json or .parquet")


def write_parquet(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` (parent folders created) and return the path."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows)).to_parquet(path, index=False)
    return path


class RowErrors:
    """Collects malformed input rows: each is reported with its index once, then counted.

    >>> errs = RowErrors("demo", stream=sys.stdout)
    >>> errs.add(3, "missing answer (key 'answer')")
    demo: row 3 skipped: missing answer (key 'answer')
    >>> len(errs)
    1
    """

    def __init__(self, name: str, stream: Any = None):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.rows: list[tuple[int, str]] = []

    def add(self, index: int, reason: str) -> None:
        """Report row ``index`` as skipped because of ``reason``."""
        self.rows.append((index, reason))
        print(f"{self.name}: row {index} skipped: {reason}", file=self.stream)

    def __len__(self) -> int:
        return len(self.rows)

    def summary(self, total: int) -> str:
        """The end-of-run count line."""
        return f"{self.name}: skipped {len(self.rows)} malformed row(s) of {total}"


def iter_progress(items: Sequence[Any], desc: str) -> Iterator[Any]:
    """``items`` with a tqdm progress bar on stderr."""
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit="row", file=sys.stderr, dynamic_ncols=True)
