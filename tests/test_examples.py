"""examples/score_rollouts.py: runs as a script on the bundled sample, with reward_fns alone.

Every run is a real subprocess of the script; expected scores are recomputed here through the
public ``reward_fns.compute_score``.
"""

import doctest
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reward_fns import compute_score

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "score_rollouts.py"
SAMPLE = ROOT / "examples" / "sample_rollouts.jsonl"
HEAVY = ("torch", "verl", "ray", "transformers")


def _run(*args, env=None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False
    )


def _read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


GUARD = """
import os, sys

_LOG = os.environ["HEAVY_IMPORT_LOG"]


class _BlockHeavy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in __HEAVY_MODULES__:
            with open(_LOG, "a") as f:
                f.write(f"{os.getpid()} imported {name}\\n")
            raise ImportError(f"blocked by the test: {name}")
        return None


sys.meta_path.insert(0, _BlockHeavy())
with open(_LOG, "a") as f:
    f.write(f"{os.getpid()} guard-active\\n")
""".replace("__HEAVY_MODULES__", repr(HEAVY))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    """Run the script on the sample with an import guard in every Python process it starts.

    A ``sitecustomize`` on PYTHONPATH (inherited by child processes, e.g. reward_fns.math's
    checker server) logs and blocks any import of torch, verl, ray or transformers.
    """
    tmp = tmp_path_factory.mktemp("scored")
    (tmp / "guard").mkdir()
    (tmp / "guard" / "sitecustomize.py").write_text(GUARD)
    log, out = tmp / "imports.log", tmp / "scored.jsonl"
    env = {**os.environ, "PYTHONPATH": str(tmp / "guard"), "HEAVY_IMPORT_LOG": str(log)}
    proc = _run(str(SCRIPT), "--output", str(out), env=env)  # --input defaults to the sample
    return proc, _read_jsonl(out), log.read_text().splitlines()


def test_sample_is_realistic_and_covers_every_kind_of_row():
    rows = _read_jsonl(SAMPLE)
    assert 15 <= len(rows) <= 30
    sources = {r["data_source"] for r in rows}
    assert {"math", "knights_knaves", "kk_logic", "vote"} <= sources
    assert sources & {"gsm8k", "openai/gsm8k"}
    kk_logic = [r for r in rows if r["data_source"] == "kk_logic"]
    assert any(
        isinstance(r["ground_truth"], dict) and {"solution_text_format", "statements"} <= set(r["ground_truth"])
        for r in kk_logic
    )
    assert any("majority_label" in (r.get("extra_info") or {}) for r in rows if r["data_source"] == "vote")


def test_every_row_is_scored_like_compute_score(sample_run):
    proc, scored, _ = sample_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _read_jsonl(SAMPLE)
    assert len(scored) == len(rows)
    assert "bad row" not in proc.stderr, [ln for ln in proc.stderr.splitlines() if "bad row" in ln]
    for k, (row, out) in enumerate(zip(rows, scored, strict=True), 1):
        assert out["line"] == k and out["id"] == row["id"] and out["response"] == row["response"]
        assert out["result"] == compute_score(
            row["data_source"], row["response"], row["ground_truth"], row.get("extra_info")
        ), row["id"]


def test_knights_and_knaves_rows_get_logic_rl_values(sample_run):
    _, scored, _ = sample_run
    by_id = {r["id"]: r.get("result") for r in scored if r["data_source"] in ("kk_logic", "knights_knaves")}
    assert by_id["kk-logic-right"]["score"] == 3.0
    assert by_id["kk-logic-wrong-identity"]["score"] == -0.5
    assert by_id["kk-logic-unparseable"]["score"] == -1.0
    assert by_id["kk-logic-format-failure"]["score"] == -3.0
    assert by_id["kk-logic-json-ground-truth"]["score"] == 3.0
    assert by_id["kk-generated-5-right"]["score"] == 3.0
    assert by_id["kk-generated-7-wrong"]["score"] == -0.5
    assert by_id["kk-generated-2-think-in-prompt"]["score"] == 3.0


def test_math_rows_are_judged_as_a_mathematician_would(sample_run):
    _, scored, _ = sample_run
    acc = {r["id"]: r["result"]["acc"] for r in scored if r["data_source"] != "kk_logic"}
    for right in ("math-boxed-right", "math-equivalent-fraction", "math-equivalent-latex", "math-unformatted-right"):
        assert acc[right] == 1.0, right
    for wrong in ("math-wrong", "math-no-answer", "math-dapo-wrong-unformatted", "gsm8k-wrong"):
        assert acc[wrong] == 0.0, wrong
    assert acc["gsm8k-right"] == 1.0
    assert acc["vote-matches-majority"] == 1.0 and acc["vote-against-majority"] == 0.0


def test_summary_is_printed_with_the_output_file_numbers(sample_run):
    proc, scored, _ = sample_run
    results = [r["result"] for r in scored]
    n = len(results)
    mean = sum(r["score"] for r in results) / n
    acc = sum(r["acc"] for r in results) / n
    fmt = sum(r["format_ok"] for r in results) / n
    total = [ln for ln in proc.stdout.splitlines() if ln.startswith("all ")]
    assert len(total) == 1, proc.stdout
    assert total[0].split()[1:5] == [str(n), f"{mean:.3f}", f"{acc:.3f}", f"{fmt:.3f}"]
    kk = [r["result"]["score"] for r in scored if r["data_source"] == "kk_logic"]
    kk_line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("kk_logic "))
    assert kk_line.split()[1:3] == [str(len(kk)), f"{sum(kk) / len(kk):.3f}"]
    assert f"scored {n} of {n} rows" in proc.stdout


def test_the_run_imports_no_torch_ray_or_verl(sample_run):
    proc, scored, import_log = sample_run
    assert any(line.endswith("guard-active") for line in import_log)  # the guard ran in the script
    assert [line for line in import_log if " imported " in line] == []
    assert scored and all("result" in r for r in scored), proc.stderr[-2000:]


def test_bad_rows_are_reported_with_line_numbers_and_counted(tmp_path):
    good = {"data_source": "kk_logic", "response": "x</think><answer>Zoey is a knight</answer>"}
    good["ground_truth"] = {"solution_text_format": "(1) Zoey is a knight"}
    lines = [
        json.dumps(good),
        json.dumps({"data_source": "kk_logic", "response": "x"}),  # 2: no ground_truth
        "",  # blank lines are skipped
        json.dumps({**good, "data_source": "mth"}),  # 4: unknown data source
        "{not json",  # 5
        json.dumps(["a", "list"]),  # 6
        json.dumps({**good, "extra_info": "simplerl"}),  # 7: extra_info not an object
        json.dumps({**good, "ground_truth": 42}),  # 8: bad ground truth is a failure score, not a bad row
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n")
    proc = _run(str(SCRIPT), "--input", str(src), "--output", str(out), "--scheme", "logicrl")
    assert proc.returncode == 0, proc.stderr
    assert "bad rows: 5 (lines 2, 4, 5, 6, 7)" in proc.stdout
    for number, why in [(2, "missing field 'ground_truth'"), (4, "unknown data_source 'mth'"), (5, "not a JSON line")]:
        assert f"in.jsonl:{number}: bad row: {why}" in proc.stderr
    written = _read_jsonl(out)
    assert [r["line"] for r in written] == [1, 2, 4, 5, 6, 7, 8]
    assert written[0]["result"]["score"] == 3.0
    assert written[-1]["result"]["score"] == -3.0 and written[-1]["result"]["error"].startswith("TypeError")
    assert {r["line"] for r in written if "row_error" in r} == {2, 4, 5, 6, 7}
    assert written[3]["raw"] == "{not json"
    assert "scored 2 of 7 rows" in proc.stdout


def test_scheme_flag_overrides_and_is_validated(tmp_path):
    out = tmp_path / "out.jsonl"
    proc = _run(str(SCRIPT), "--output", str(out), "--scheme", "simplerl")
    assert proc.returncode == 0, proc.stderr
    for r in _read_jsonl(out):
        assert r["result"]["score"] in (1.0, -0.5, -1.0), r["id"]
    proc = _run(str(SCRIPT), "--output", str(out), "--scheme", "simplrl")
    assert proc.returncode == 2 and "invalid choice: 'simplrl'" in proc.stderr
    proc = _run(str(SCRIPT), "--input", str(tmp_path / "missing.jsonl"), "--output", str(out))
    assert proc.returncode == 2 and "is not a file" in proc.stderr


def test_script_doctests():
    spec = importlib.util.spec_from_file_location("score_rollouts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted >= 3 and failed == 0
