"""The AZR GPU recipes (``recipes/run_azr_qwen7b.sh``, ``run_azr_coder7b.sh``) and their preflight.

Like ``tests/test_recipes.py`` (which also picks these recipes up by glob), the scripts run with a recording
``python3`` (``tests/_recipes.py``), and verl's real config is composed from exactly the arguments they pass. Here
the composed config must also pass what the AZR trainer checks at start-up (``AZRConfig`` and
``_check_verl_config``), resolve ``azr`` in verl's trainer and agent-loop registries, and carry the reference's 7B
numbers. The preflight (``verl_selfplay.gpu_preflight``) is tested twice: the recording shim shows that each recipe
calls it first, and running a recipe for real on this CPU machine shows that it stops within seconds, naming the
missing GPU, vLLM and model, without a stack trace and before it writes anything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _recipes import RECIPES, capture, compose, recorded_argvs

from verl_selfplay import gpu_preflight
from verl_selfplay.gpu_preflight import Problem, check_gpus, check_model, check_module

AZR_RECIPES = {"run_azr_qwen7b.sh": "Qwen/Qwen2.5-7B", "run_azr_coder7b.sh": "Qwen/Qwen2.5-Coder-7B"}
PASSTHROUGH = "trainer.total_training_steps=3"
PREFLIGHT = "verl_selfplay.gpu_preflight"


def _composed(name: str, tmp_path: Path, *extra: str, env: dict | None = None):
    calls = capture(RECIPES / name, *extra, env=env, tmp=tmp_path)
    assert len(calls) == 1, f"{name} must run verl.trainer.main_ppo exactly once"
    return calls[0], compose(calls[0])


def _azr_config(cfg):
    from omegaconf import OmegaConf

    from verl_selfplay.azr.config import AZRConfig

    return AZRConfig.from_mapping(OmegaConf.to_container(cfg.azr, resolve=True))


# ------------------------------------------------------------------------------------------------ composition
@pytest.mark.parametrize("name", sorted(AZR_RECIPES))
def test_recipe_passes_verl_and_azr_start_up_checks(name, tmp_path):
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.config import validate_config

    from verl_selfplay.azr.advantage import ADV_ESTIMATOR
    from verl_selfplay.azr.agent_loop import domain_of
    from verl_selfplay.azr.trainer import AZRTrainer, _check_verl_config

    call, cfg = _composed(name, tmp_path, PASSTHROUGH)
    assert call.overrides[-1] == PASSTHROUGH, 'the recipe must end its command with "$@"'
    assert cfg.trainer.total_training_steps == 3
    assert not need_reference_policy(cfg) and not need_critic(cfg)  # no KL, so no reference model; no critic
    validate_config(cfg, use_reference_policy=False, use_critic=False)
    azr = _azr_config(cfg)
    _check_verl_config(
        cfg, azr, domain_of(cfg, azr)
    )  # train_batch_size = rows per step, rollout.n = 1, no DAPO filter, steps set

    assert get_trainer_cls(cfg.trainer.v1.trainer_mode) is AZRTrainer
    assert cfg.algorithm.adv_estimator == ADV_ESTIMATOR and get_adv_estimator_fn(ADV_ESTIMATOR) is not None
    assert _agent_loop_registry["azr"]["_target_"] == "verl_selfplay.azr.agent_loop.AZRAgentLoop"
    assert callable(get_custom_reward_fn(cfg))
    assert cfg.reward.custom_reward_function.reward_kwargs.scheme == "azr"


@pytest.mark.parametrize("name", sorted(AZR_RECIPES))
def test_recipe_carries_the_reference_7b_settings(name, tmp_path):
    _, cfg = _composed(name, tmp_path)
    actor, rollout, azr = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout, _azr_config(cfg)
    assert cfg.actor_rollout_ref.model.path == AZR_RECIPES[name]
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (1, 4)
    assert (actor.optim.lr, actor.optim.lr_scheduler_type, actor.optim.lr_warmup_steps_ratio) == (1e-6, "constant", 0)
    assert actor.optim.clip_grad == 1.0  # what verl 0.9.1's engine reads (actor.grad_clip is not read)
    assert (rollout.temperature, rollout.top_p, rollout.n, rollout.name) == (1.0, 1.0, 1, "vllm")
    assert (cfg.data.max_prompt_length, cfg.data.max_response_length) == (6144, 8096)
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.28, "token-mean")
    assert not actor.use_kl_loss and not cfg.algorithm.use_kl_in_reward
    assert (actor.ppo_mini_batch_size, actor.ppo_epochs) == (128, 1)
    assert actor.use_dynamic_bsz and actor.ppo_max_token_len_per_gpu >= 6144 + 8096  # one whole sequence fits
    assert cfg.data.train_batch_size == azr.batch_size == 384 and 384 % actor.ppo_mini_batch_size == 0
    assert (azr.propose_per_type, azr.solve_per_type, azr.n_references, azr.n_learn) == (64, 64, 6, 8)
    assert (azr.seed_buffer_size, azr.buffer_cap, azr.timeout) == (256, 16384, 10.0)
    assert azr.task_types == ("deduction", "abduction", "induction") and azr.prompt_style == "reference"
    assert cfg.trainer.total_training_steps == 500
    assert cfg.trainer.test_freq > 0 and cfg.data.val_files.endswith("/test.parquet")  # held-out tasks validated
    assert rollout.agent.num_workers >= 1 and cfg.reward.num_workers >= 1


def test_coder_recipe_differs_only_in_the_model_and_the_experiment_name(tmp_path):
    home = {"HOME": str(tmp_path)}  # the same $HOME, so the same default DATA_DIR and RUN_DIR
    base, _ = _composed("run_azr_qwen7b.sh", tmp_path / "a", env=home)
    coder, _ = _composed("run_azr_coder7b.sh", tmp_path / "b", env=home)
    differ = sorted(set(base.overrides) ^ set(coder.overrides))
    assert [o.split("=", 1)[0] for o in differ] == ["actor_rollout_ref.model.path"] * 2 + [
        "trainer.experiment_name"
    ] * 2


@pytest.mark.parametrize("name", sorted(AZR_RECIPES))
def test_every_number_is_cited(name):
    from test_recipes import _NUMBER
    from test_recipes import test_every_number_is_cited as check  # the rule of the other recipes, unchanged

    text = (RECIPES / name).read_text()
    if "-m verl.trainer.main_ppo" in text:
        check(name)
        return
    # the coder recipe only changes run_azr_qwen7b.sh's defaults (model, experiment name) and runs it
    assert 'run_azr_qwen7b.sh" "$@"' in text
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if re.match(r"^\s*(export\s+)?\w+=", code) and _NUMBER.search(code.split("=", 1)[1]):
            assert "[" in line.split("#", 1)[-1], f"{name}: uncited number in: {line.strip()}"


@pytest.mark.parametrize("name", sorted(AZR_RECIPES))
def test_recipe_runs_the_preflight_then_prepares_its_data_once(name, tmp_path):
    data = tmp_path / "data"
    env = {"MODEL_PATH": "/models/m", "DATA_DIR": str(data), "GPUS_PER_NODE": "2"}
    capture(RECIPES / name, env=env, tmp=tmp_path)
    argvs = recorded_argvs(tmp_path)
    assert [a[:2] for a in argvs] == [
        ["-m", PREFLIGHT],
        ["-m", "verl_selfplay.azr.data"],
        ["-m", "verl.trainer.main_ppo"],
    ]
    assert argvs[0][2:] == ["--model", "/models/m", "--gpus", "2", "--need", "vllm"]
    assert argvs[1][2:4] == ["--out", str(data)]

    data.mkdir()
    (data / "train.parquet").touch()
    (data / "test.parquet").touch()
    capture(RECIPES / name, env=env, tmp=tmp_path)
    assert [a[1] for a in recorded_argvs(tmp_path)] == [PREFLIGHT, "verl.trainer.main_ppo"]


# ------------------------------------------------------------------------------------------------ preflight, for real
def _run_recipe_for_real(name: str, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """``bash recipes/NAME`` with this test's Python as ``python3`` (not the recording shim)."""
    run_env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "GPUS_PER_NODE", "SKIP_PREFLIGHT")}
    run_env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path),
        DATA_DIR=str(tmp_path / "data"),
        HF_HUB_CACHE=str(tmp_path / "hub"),  # an empty cache: nothing is downloaded here
        **env,
    )
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(RECIPES / name)], cwd=RECIPES.parent, env=run_env, capture_output=True, text=True, timeout=120
    )
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def cpu_only():
    found, _ = gpu_preflight.visible_gpus()
    if found > 0:
        pytest.skip("this machine has a GPU: the preflight would pass the GPU check")
    return check_module("vllm") is not None  # whether vLLM is missing too


@pytest.mark.parametrize("name", sorted(AZR_RECIPES))
def test_recipe_stops_on_a_cpu_machine_naming_what_is_missing(name, tmp_path, cpu_only):
    proc, seconds = _run_recipe_for_real(name, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 30, (proc.returncode, seconds, out[-2000:])
    assert "Traceback" not in out, out[-3000:]
    assert "no GPU" in out and "needs 4" in out and "bash recipes/run_" in out  # what, and where to go instead
    assert f"MODEL_PATH={AZR_RECIPES[name]} is neither a local folder nor a model in the Hugging Face cache" in out
    assert f"huggingface-cli download {AZR_RECIPES[name]}" in out
    if cpu_only:  # vLLM missing as well (this machine has no vllm)
        assert "vllm is not installed" in out and 'pip install -e ".[gpu]"' in out
    assert "SKIP_PREFLIGHT=1" in out
    assert not (tmp_path / "data").exists()  # it stopped before preparing data or starting verl


def test_a_nonexistent_model_path_is_named(tmp_path, cpu_only):
    proc, _ = _run_recipe_for_real("run_azr_qwen7b.sh", tmp_path, MODEL_PATH=str(tmp_path / "no_such_model"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out
    assert f"MODEL_PATH={tmp_path / 'no_such_model'} does not exist" in out


# ------------------------------------------------------------------------------------------------ preflight, unit
def _model_folder(root: Path, weights: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    if weights:
        (root / "model.safetensors").write_bytes(b"")
    return root


def test_model_check_accepts_a_local_folder_or_a_cached_hub_id(tmp_path):
    assert check_model(str(_model_folder(tmp_path / "local"))) is None
    hub = tmp_path / "hub"
    _model_folder(hub / "models--Qwen--Qwen2.5-7B" / "snapshots" / "abc123")
    assert check_model("Qwen/Qwen2.5-7B", cache_dir=hub) is None
    assert "Hugging Face cache" in check_model("Qwen/Qwen2.5-Coder-7B", cache_dir=hub).what


def test_model_check_names_an_incomplete_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in check_model(str(tmp_path / "empty")).what
    assert "no weights" in check_model(str(_model_folder(tmp_path / "partial", weights=False))).what
    (tmp_path / "file").write_text("")
    assert "is a file" in check_model(str(tmp_path / "file")).what
    assert "empty" in check_model("").what


def test_hub_cache_dir_follows_huggingface_hub(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert gpu_preflight.hub_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert gpu_preflight.hub_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert gpu_preflight.hub_cache_dir() == tmp_path / "cache"


def test_gpu_check_counts_devices():
    assert check_gpus(4, 8, "torch", "hint") is None
    assert "2 GPU(s) visible, GPUS_PER_NODE=4" in check_gpus(4, 2, "torch", "hint").what
    assert "hint" in check_gpus(4, 0, "torch", "hint").fix
    assert check_gpus(4, -1, "torch cannot be imported", "hint").fix == 'pip install -e ".[gpu]"'


def test_main_passes_skips_and_never_raises(monkeypatch, capsys, tmp_path):
    model = str(_model_folder(tmp_path / "m"))
    monkeypatch.delenv("SKIP_PREFLIGHT", raising=False)
    monkeypatch.setattr(gpu_preflight, "visible_gpus", lambda: (4, "torch (test)"))
    assert gpu_preflight.main(["--model", model, "--gpus", "4", "--need", "json"]) == 0
    assert "preflight: ok" in capsys.readouterr().out

    monkeypatch.setattr(gpu_preflight, "visible_gpus", lambda: (0, "torch (test)"))
    assert gpu_preflight.main(["--model", model, "--gpus", "4"]) == 1
    monkeypatch.setenv("SKIP_PREFLIGHT", "1")
    assert gpu_preflight.main(["--model", "/nonexistent", "--gpus", "4", "--need", "vllm_not_a_module"]) == 0
    assert "skipped" in capsys.readouterr().out

    monkeypatch.delenv("SKIP_PREFLIGHT")

    def broken():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(gpu_preflight, "visible_gpus", broken)
    assert gpu_preflight.main(["--gpus", "1"]) == 1
    assert "driver exploded" in capsys.readouterr().err


def test_report_lists_every_problem_with_its_fix():
    text = gpu_preflight.format_report([Problem("a is missing", "install a"), Problem("b", "do x\nthen y")])
    assert text.splitlines()[1:6] == [
        "  - a is missing",
        "    fix: install a",
        "  - b",
        "    fix: do x",
        "         then y",
    ]


def test_doctests():
    import doctest

    result = doctest.testmod(gpu_preflight, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_importing_the_preflight_is_light():
    code = "import sys, verl_selfplay.gpu_preflight; print(sorted(m for m in ('torch', 'verl', 'vllm') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
