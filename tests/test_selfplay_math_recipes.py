"""The math self-play recipes (``recipes/run_selfplay_math_tiny_cpu.sh``, ``run_selfplay_math_qwen7b.sh``) and their
validation data (``verl_selfplay.azr.math_data``).

As in ``tests/test_azr_recipes.py``, the scripts run with a recording ``python3`` (``tests/_recipes.py``) and verl's
real config is composed from exactly the arguments they pass; the composed config must then pass what the AZR
trainer checks at start-up for the math domain (``AZRConfig``, ``MathConfig``, ``_check_verl_config`` against
``MathDomain.rows_per_step``) and carry the settings each recipe promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _recipes import RECIPES, capture, compose, recorded_argvs

CPU = "run_selfplay_math_tiny_cpu.sh"
GPU = "run_selfplay_math_qwen7b.sh"
PASSTHROUGH = "trainer.total_training_steps=3"


def _composed(name: str, tmp_path: Path, *extra: str, env: dict | None = None):
    calls = capture(RECIPES / name, *extra, env=env, tmp=tmp_path)
    assert len(calls) == 1, f"{name} must run verl.trainer.main_ppo exactly once"
    return calls[0], compose(calls[0])


def _domain(cfg):
    from omegaconf import OmegaConf

    from verl_selfplay.azr.agent_loop import domain_of
    from verl_selfplay.azr.config import AZRConfig

    azr = AZRConfig.from_mapping(OmegaConf.to_container(cfg.azr, resolve=True))
    return azr, domain_of(cfg, azr)


# ------------------------------------------------------------------------------------------------ composition
@pytest.mark.parametrize("name", [CPU, GPU])
def test_recipe_passes_verl_and_math_self_play_start_up_checks(name, tmp_path):
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.config import validate_config

    from verl_selfplay.azr.advantage import ADV_ESTIMATOR
    from verl_selfplay.azr.domains.math import MathDomain
    from verl_selfplay.azr.trainer import AZRTrainer, _check_verl_config

    call, cfg = _composed(name, tmp_path, PASSTHROUGH, env={"SKIP_PREFLIGHT": "1"})
    assert call.overrides[-1] == PASSTHROUGH, 'the recipe must end its command with "$@"'
    assert cfg.trainer.total_training_steps == 3
    assert not need_reference_policy(cfg) and not need_critic(cfg)
    validate_config(cfg, use_reference_policy=False, use_critic=False)
    azr, domain = _domain(cfg)
    assert azr.domain == "math" and isinstance(domain, MathDomain)
    _check_verl_config(cfg, azr, domain)  # train_batch_size = the domain's rows per step, rollout.n = 1, ...
    assert cfg.data.train_batch_size == domain.rows_per_step()
    assert cfg.data.train_batch_size % cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 0

    assert get_trainer_cls(cfg.trainer.v1.trainer_mode) is AZRTrainer
    assert cfg.algorithm.adv_estimator == ADV_ESTIMATOR and get_adv_estimator_fn(ADV_ESTIMATOR) is not None
    assert _agent_loop_registry["azr"]["_target_"] == "verl_selfplay.azr.agent_loop.AZRAgentLoop"
    assert callable(get_custom_reward_fn(cfg))
    assert cfg.reward.custom_reward_function.reward_kwargs.scheme == "r1"  # solver answers: <think>...<answer>


def test_cpu_recipe_settings_fit_the_tiny_model(tmp_path, tiny_math):
    from verl_selfplay import tiny

    env = {"WORK_DIR": str(tmp_path / "work"), "SEED": "3"}
    call, cfg = _composed(CPU, tmp_path, env=env)
    azr, domain = _domain(cfg)
    c = domain.cfg
    assert cfg.trainer.total_training_steps == 10 and cfg.trainer.save_freq == 10  # checkpoint at the end
    assert azr.prompt_style == "compact" and azr.sample_seed == 3
    assert (azr.propose_per_type, azr.solve_per_type, azr.n_references) == (4, 4, 2)
    assert (c.label_samples, c.solver_samples, c.heldout, c.probes_per_step, c.relabel_per_step) == (4, 4, 8, 2, 2)
    assert c.solver_acc_range == (0.1, 0.8)  # PromptCoT's acc-filter, as at 7B
    assert cfg.data.train_batch_size == 4 + 4 * 4 + 2 + 2
    data = tmp_path / "work" / "data"
    assert c.seed_file == str(data / "seeds.jsonl") and cfg.data.val_files == str(data / "test.parquet")
    assert cfg.actor_rollout_ref.model.path == str(tmp_path / "work" / "model")
    assert cfg.actor_rollout_ref.rollout.name == "hf" and cfg.trainer.device == "cpu"  # the CPU preset
    lengths = tiny.math_lengths(tiny.load_tokenizer(tiny_math[0]))
    assert max(v for k, v in lengths.items() if k != "response") <= cfg.data.max_prompt_length
    assert lengths["response"] <= cfg.data.max_response_length
    argvs = recorded_argvs(tmp_path)
    build = next(a for a in argvs if a[:2] == ["-m", "verl_selfplay.tiny"])
    assert "--selfplay-math" in build and build[build.index("--seed") + 1] == "3"
    assert argvs[-1] == [
        "-m",
        "verl_selfplay.report",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "work" / "report"),
    ]
    assert argvs[-2][:2] == ["-m", "verl_selfplay.azr.math_report"]
    assert argvs[-2][2:] == [
        str(tmp_path / "work" / "metrics.jsonl"),
        "--png",
        str(tmp_path / "work" / "selfplay_math_curves.png"),
    ]


def test_gpu_recipe_carries_the_promptcot_zero_rl_settings(tmp_path):
    _, cfg = _composed(GPU, tmp_path, env={"HOME": str(tmp_path)})
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    azr, domain = _domain(cfg)
    c = domain.cfg
    assert cfg.actor_rollout_ref.model.path == "Qwen/Qwen2.5-7B"
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (1, 8)
    assert c.solver_samples == 16 and c.label_samples == 8 and rollout.n == 1
    assert c.solver_acc_range == (0.1, 0.8)  # acc-filter 0.1-0.8 on the solver groups
    assert actor.optim.lr == 1e-6
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.28, "token-mean")
    assert not actor.use_kl_loss and not cfg.algorithm.use_kl_in_reward
    assert (rollout.name, rollout.temperature) == ("vllm", 1.0)
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (2048, 8192)
    assert azr.prompt_style == "reference" and azr.n_references == 6
    assert cfg.data.train_batch_size == 64 + 32 * 16 + 32 + 32 == domain.rows_per_step()
    assert actor.use_dynamic_bsz and actor.ppo_max_token_len_per_gpu >= 2048 + 8192
    assert c.seed_file == str(tmp_path / "data" / "selfplay_math" / "seeds.jsonl")  # under the user's data dir
    assert cfg.trainer.test_freq > 0 and cfg.data.val_files.endswith("/test.parquet")


def test_gpu_recipe_reads_its_environment(tmp_path):
    env = {"SEED_FILE": "/d/seeds.parquet", "MODEL_PATH": "/models/m", "GPUS_PER_NODE": "4", "DATA_DIR": "/d/x"}
    _, cfg = _composed(GPU, tmp_path, env=env)
    assert cfg.selfplay_math.seed_file == "/d/seeds.parquet" and cfg.actor_rollout_ref.model.path == "/models/m"
    assert cfg.trainer.n_gpus_per_node == 4 and cfg.data.val_files == "/d/x/test.parquet"


def test_gpu_recipe_cites_every_number():
    from test_recipes import test_every_number_is_cited as check  # the rule of the other GPU recipes, unchanged

    check(GPU)


def test_gpu_recipe_runs_the_preflight_then_prepares_its_data_once(tmp_path):
    data = tmp_path / "data"
    env = {"MODEL_PATH": "/models/m", "DATA_DIR": str(data), "GPUS_PER_NODE": "2", "SEED_FILE": "/s.jsonl"}
    env["VAL_FILE"] = "/v.jsonl"
    capture(RECIPES / GPU, env=env, tmp=tmp_path)
    argvs = recorded_argvs(tmp_path)
    assert [a[:2] for a in argvs] == [
        ["-m", "verl_selfplay.gpu_preflight"],
        ["-m", "verl_selfplay.azr.math_data"],
        ["-m", "verl.trainer.main_ppo"],
    ]
    assert argvs[0][2:] == ["--model", "/models/m", "--gpus", "2", "--need", "vllm"]
    assert argvs[1][2:] == [
        "--seeds",
        "/s.jsonl",
        "--val",
        "/v.jsonl",
        "--out",
        str(data),
        "--prompt-style",
        "reference",
    ]

    data.mkdir()
    (data / "train.parquet").touch()
    (data / "test.parquet").touch()
    capture(RECIPES / GPU, env=env, tmp=tmp_path)
    assert [a[1] for a in recorded_argvs(tmp_path)] == ["verl_selfplay.gpu_preflight", "verl.trainer.main_ppo"]


def test_gpu_recipe_stops_on_a_cpu_machine_before_writing_anything(tmp_path):
    from verl_selfplay import gpu_preflight

    if gpu_preflight.visible_gpus()[0] > 0:
        pytest.skip("this machine has a GPU: the preflight would pass the GPU check")
    run_env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "GPUS_PER_NODE", "SKIP_PREFLIGHT")}
    run_env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path),
        HF_HUB_CACHE=str(tmp_path / "hub"),
    )
    proc = subprocess.run(
        ["bash", str(RECIPES / GPU)], cwd=RECIPES.parent, env=run_env, capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert "no GPU" in out and "needs 8" in out and "SKIP_PREFLIGHT=1" in out
    assert not (tmp_path / "data").exists()


# ------------------------------------------------------------------------------------------------ validation data
def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_math_data_writes_solver_rows_of_the_graded_validation_problems(tmp_path):
    import pandas as pd

    import reward_fns
    from verl_selfplay.azr.domains.math import Problem, solver_prompt
    from verl_selfplay.azr.math_data import main

    seeds = _jsonl(tmp_path / "s.jsonl", [{"problem": "What is 2+2?", "answer": "4"}, {"question": "Find x."}])
    val = _jsonl(tmp_path / "v.jsonl", [{"problem": "Compute 1/2+1/4.", "answer": "3/4"}, {"problem": "No gold."}])
    assert main(["--seeds", str(seeds), "--val", str(val), "--out", str(tmp_path / "d")]) == 0
    test = pd.read_parquet(tmp_path / "d" / "test.parquet")
    assert len(test) == 1  # the problem without a gold answer is left out
    row = test.iloc[0]
    assert row.prompt[0]["content"] == solver_prompt(Problem("Compute 1/2+1/4."), style="reference")
    assert (row.agent_name, row.azr_role, row.azr_task, row.data_source) == ("azr", "solve", "math", "math")
    answer = "<think>1/2 + 1/4 = 3/4</think><answer>\\frac{3}{4}</answer>"
    assert reward_fns.compute_score(row.data_source, answer, row.reward_model["ground_truth"], {})["acc"] == 1.0
    assert len(pd.read_parquet(tmp_path / "d" / "train.parquet")) == 2


def test_math_data_names_a_missing_file_without_a_traceback(tmp_path):
    seeds = _jsonl(tmp_path / "s.jsonl", [{"problem": "What is 2+2?", "answer": "4"}])
    cmd = [sys.executable, "-m", "verl_selfplay.azr.math_data", "--seeds", str(seeds), "--out", str(tmp_path / "d")]
    proc = subprocess.run([*cmd, "--val", str(tmp_path / "nope.jsonl")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nope.jsonl" in proc.stderr and "is not a file" in proc.stderr
    ungraded = _jsonl(tmp_path / "u.jsonl", [{"problem": "No gold."}])
    proc = subprocess.run([*cmd, "--val", str(ungraded)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no validation problem has a gold answer" in proc.stderr


def test_math_data_doctests():
    import doctest

    from verl_selfplay.azr import math_data

    result = doctest.testmod(math_data)
    assert result.attempted > 0 and result.failed == 0
