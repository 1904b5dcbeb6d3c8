"""reward_fns.integrations.trl: our rewards as TRL GRPOTrainer reward functions.

The end-to-end test trains a tiny Qwen2 (built locally from a config, verl_selfplay.tiny) for 2 steps with TRL's
real GRPOTrainer on CPU, with a math reward and a sandboxed code reward, and checks that TRL logs exactly the rewards
our functions returned, each equal to compute_score's score for its row.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reward_fns import compute_score
from reward_fns.integrations.trl import completion_text, reward_func

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("trl", "torch", "transformers", "verl", "ray", "numpy")
IDENTITY = "def f(x):\n    return x"  # abduction with the identity: the solver's input must equal the gold output


def _trl():
    """TRL, which CI installs (the `test` extra); elsewhere a missing TRL skips the test."""
    if os.environ.get("CI"):
        import trl

        return trl
    return pytest.importorskip("trl")


def test_importing_and_calling_it_pulls_in_no_trl_or_torch():
    code = (
        "import sys, json, reward_fns\n"
        "from reward_fns.integrations.trl import reward_func\n"
        "f = reward_func('math')\n"
        "assert f(prompts=['p'], completions=['<think>a</think><answer>1</answer>'], ground_truth=['1']) == [2.0]\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    mods = set(json.loads(out.strip().splitlines()[-1]))
    assert not [m for m in HEAVY if m in mods]


ROWS = [  # (data_source, completion text, gold, extra_info, score kwargs)
    ("math", "<think>half</think><answer>\\frac{1}{2}</answer>", "0.5", None, {}),
    ("math", "<think>x</think><answer>3</answer>", "4", None, {"scheme": "simplerl"}),
    ("gsm8k", "so \\boxed{72}", "72", {"scheme": "simplerl"}, {}),
    ("kk_logic", "x</think><answer>(1) Zoey is a knight</answer>", {"solution_text_format": "(1) Zoey is a knight"}, None, {}),
    ("knights_knaves", "<think>x</think><answer>(1) Zoey is a knave</answer>", "(1) Zoey is a knight", None, {"think_prefilled": False}),
    ("vote", "<think>x</think><answer>3</answer>", "9", {"majority_label": "3"}, {}),
    ("azr_abduction", "<think>x</think><answer>7</answer>", "7", {"program": IDENTITY}, {}),
    ("azr_abduction", "<think>x</think><answer>8</answer>", "7", {"program": IDENTITY}, {}),
    ("math", "", "1", None, {}),
]  # fmt: skip


@pytest.mark.parametrize("conversational", [False, True])
@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r[0]}-{r[1][-20:]}")
def test_each_value_is_compute_score_of_its_row(row, conversational):
    source, text, gold, info, kwargs = row
    completion = [{"role": "assistant", "content": text}] if conversational else text
    scheme = kwargs.pop("scheme", None)
    f = reward_func(source, scheme, **kwargs)
    got = f(prompts=["p"], completions=[completion], ground_truth=[gold], extra_info=[info], trainer_state=None)
    expected = compute_score(source, text, gold, info, **({"scheme": scheme} if scheme else {}), **kwargs)["score"]
    assert got == [expected] and isinstance(got[0], float)


def test_rows_from_a_verl_style_dataset_with_their_own_data_source_and_answer_column():
    f = reward_func(None, answer_column="answer", name="rows")
    texts = [row[1] for row in ROWS]
    got = f(
        prompts=["p"] * len(ROWS),
        completions=texts,
        answer=[row[2] for row in ROWS],
        extra_info=[row[3] for row in ROWS],
        data_source=[row[0] for row in ROWS],
        ground_truth=["wrong"] * len(ROWS),  # not the answer column: ignored
    )
    assert got == [compute_score(r[0], r[1], r[2], r[3])["score"] for r in ROWS]
    assert got[6] == 1.0 and got[7] == -0.5  # the sandbox ran the identity program on both answers


def test_metrics_are_logged_through_trls_log_metric():
    logged: dict[str, float] = {}
    f = reward_func("math", name="m")
    f(
        prompts=["p", "p"],
        completions=["<think>a</think><answer>1</answer>", "<answer>2</answer>"],
        ground_truth=["1", "1"],
        log_metric=logged.__setitem__,
    )
    assert logged == {"m/acc": 0.5, "m/format_ok": 0.5}


def test_configuration_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"unknown data_source 'mth'; known: .*math"):
        reward_func("mth")
    with pytest.raises(ValueError, match=r"unknown scheme 'simplrl'; valid: r1, simplerl"):
        reward_func("math", "simplrl")
    f = reward_func("math")
    with pytest.raises(ValueError, match=r"no column 'ground_truth' \(pass answer_column=...\); its columns: solution"):
        f(prompts=["p"], completions=["x"], solution=["1"], trainer_state=None)
    with pytest.raises(ValueError, match=r"column 'ground_truth' has 1 values for 2 completions"):
        f(prompts=["p", "p"], completions=["x", "y"], ground_truth=["1"])
    with pytest.raises(ValueError, match=r"column 'data_source', which the dataset lacks"):
        reward_func(None)(prompts=["p"], completions=["x"], ground_truth=["1"])


@pytest.mark.parametrize("bad", [None, 42, {"role": "assistant"}, [], [{"content": None}], [{"role": "user"}], [7]])
def test_malformed_completions_get_the_failure_score(bad):
    assert reward_func("math")(prompts=["p"], completions=[bad], ground_truth=["1"]) == [0.0]
    assert isinstance(completion_text(bad), str)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny Qwen2 of verl's CPU runs, with a little addition SFT: right sometimes, so rewards vary."""
    from verl_selfplay import tiny

    path = tmp_path_factory.mktemp("tiny") / "model"
    tiny.build(path, seed=0, sft_steps=200)
    return path


def test_the_installed_trl_keeps_what_verl_imports(tmp_path):
    """verl 0.9.1 imports TRL's value-head model in every model build once TRL is installed (docs/upstream.md,
    item 12): verl's own patch step must still work beside the TRL our extras pin."""
    _trl()
    from verl.models.transformers.monkey_patch import apply_monkey_patch

    from verl_selfplay import tiny

    tokenizer = tiny.build_tokenizer(0)
    apply_monkey_patch(tiny.build_model(tokenizer), ulysses_sp_size=1)


def test_a_real_trl_grpo_run_logs_our_rewards(tmp_path, tiny_model):
    trl = _trl()
    from datasets import Dataset

    from verl_selfplay import tiny

    model = tiny_model
    rows = []
    for a, b in [(3, 4), (2, 5), (1, 1), (4, 4)]:
        ex = tiny.addition_example(a, b)
        rows.append(
            {
                "prompt": [{"role": "user", "content": ex["prompt"]}],  # conversational: TRL applies the template
                "ground_truth": ex["ground_truth"],
                "extra_info": {"program": IDENTITY},  # for the code reward; math ignores it
            }
        )
    calls: list[tuple[str, list[str], list, list[float]]] = []

    def spy(f):
        @functools.wraps(f)  # same __name__: TRL logs under our function's name
        def wrapped(prompts, completions, **kwargs):
            out = f(prompts, completions, **kwargs)
            texts = [completion_text(c) for c in completions]
            assert all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in completions)
            calls.append((f.__name__, texts, list(kwargs["ground_truth"]), out))
            return out

        return wrapped

    math_fn, code_fn = reward_func("math", timeout_s=5.0), reward_func("azr_abduction", timeout=2.0)
    config = trl.GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=24,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-4,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=str(model),
        reward_funcs=[spy(math_fn), spy(code_fn)],
        args=config,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()

    logs = [h for h in trainer.state.log_history if "rewards/reward_fns_math/mean" in h]
    assert [h["step"] for h in logs] == [1, 2]
    for name, source, extra in (("reward_fns_math", "math", None), ("reward_fns_azr_abduction", "azr_abduction", 1)):
        mine = [c for c in calls if c[0] == name]
        assert len(mine) == 2, calls
        for log, (_, texts, golds, out) in zip(logs, mine, strict=True):
            info = {"program": IDENTITY} if extra else None
            assert out == [compute_score(source, t, g, info)["score"] for t, g in zip(texts, golds, strict=True)]
            assert log[f"rewards/{name}/mean"] == pytest.approx(sum(out) / len(out), abs=1e-6)
            assert f"{name}/acc" in log and f"{name}/format_ok" in log
    for log, step_calls in zip(logs, (calls[0:2], calls[2:4]), strict=True):
        totals = [a + b for a, b in zip(step_calls[0][3], step_calls[1][3], strict=True)]
        assert log["reward"] == pytest.approx(sum(totals) / len(totals), abs=1e-6)
    code_scores = [s for c in calls if c[0] == "reward_fns_azr_abduction" for s in c[3]]
    assert set(code_scores) & {1.0, -0.5}, code_scores  # formatted answers: programs ran in the sandbox
    math_scores = [s for c in calls if c[0] == "reward_fns_math" for s in c[3]]
    assert len(set(math_scores)) > 1, math_scores  # GRPO had something to learn from

    # the same process, now holding torch, TRL and a trained model: the math budget and the sandbox still hold,
    # on the main thread and off it
    hostile = [{"role": "assistant", "content": "<think>x</think><answer>10^{10^{10}}</answer>"}]
    budget = reward_func("math", "simplerl", timeout_s=1.0)
    results: dict[str, tuple[list[float], float]] = {}

    def run(key: str) -> None:
        start = time.monotonic()
        math_out = budget(prompts=[[]], completions=[hostile], ground_truth=["3"])
        code_out = code_fn(prompts=[[]], completions=["<think>x</think><answer>5</answer>"], ground_truth=["5"],
                           extra_info=[{"program": IDENTITY}])  # fmt: skip
        results[key] = (math_out + code_out, time.monotonic() - start)

    run("main")
    thread = threading.Thread(target=run, args=("thread",))
    thread.start()
    thread.join(60)
    for key in ("main", "thread"):
        scores, elapsed = results[key]
        assert scores == [-0.5, 1.0] and elapsed < 1.0 + 5.0, (key, scores, elapsed)
    assert not math.isnan(sum(code_scores))


def test_the_trl_example_trains_and_prints_the_logged_rewards(tmp_path, tiny_model):
    _trl()
    script = str(ROOT / "examples" / "trl_grpo.py")
    proc = subprocess.run(
        [sys.executable, script, "--model", str(tiny_model), "--out", str(tmp_path), "--max-steps", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("step ")]
    assert len(lines) == 1 and "rewards/reward_fns_math/mean=" in lines[0], proc.stdout[-2000:]
    assert len((ROOT / "examples" / "trl_grpo.py").read_text().splitlines()) < 60
