"""Every ``recipes/run_*.sh`` passes verl's real config checks, with exactly the overrides the script passes.

``tests/_recipes.py`` runs each script with a ``python3`` on ``PATH`` that records its command line, so the
scripts are the only source of their overrides and this test cannot drift from them. For each recipe the
test composes verl's Hydra config (struct mode: any unknown key fails), runs the checks ``main_ppo`` runs
before training (``validate_config``), and resolves everything the run would load by name: the reward
function, the reward manager, the advantage estimator, the trainer mode, and the custom sampler, which
is constructed the way verl's trainer constructs it (this validates ``sampler_kwargs``).
Recipes are discovered by glob; a recipe that cannot be checked here goes into ``OPT_OUT`` with a reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from _recipes import RECIPES, capture, compose, recipe_paths

# recipe file name -> why it cannot be composed here (keep empty unless unavoidable)
OPT_OUT: dict[str, str] = {}
# The recipes of issue 6, whose every number must carry a citation (see test_every_number_is_cited).
CITED = (
    "run_promptcot_zero_rl_qwen7b.sh",
    "run_logic_rl_qwen7b.sh",
    "run_simplerl_qwen_math7b.sh",
    "run_ttrl_qwen7b.sh",
)
PASSTHROUGH = "trainer.total_training_steps=3"

RECIPE_IDS = [p.name for p in recipe_paths()]


def _checked_config(script: Path, tmp_path: Path, *extra: str, env: dict | None = None):
    calls = capture(script, *extra, PASSTHROUGH, env=env, tmp=tmp_path)
    assert len(calls) == 1, f"{script.name} must run verl.trainer.main_ppo exactly once, ran it {len(calls)} times"
    call = calls[0]
    assert call.overrides[-1] == PASSTHROUGH, 'the recipe must end its command with "$@"'
    return call, compose(call)


def _build_sampler(cfg, refill_fn=None):
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    trainer = SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode, _add_prompts_to_generate=refill_fn)
    return PPOTrainer._build_replay_buffer(trainer)


def test_recipes_exist():
    assert set(CITED) <= set(RECIPE_IDS)


@pytest.mark.parametrize("name", RECIPE_IDS)
def test_recipe_composes_and_validates(name, tmp_path):
    if name in OPT_OUT:
        pytest.skip(OPT_OUT[name])
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.config import validate_config

    _, cfg = _checked_config(RECIPES / name, tmp_path)
    assert cfg.trainer.total_training_steps == 3
    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))

    if cfg.algorithm.adv_estimator != "gae":
        assert get_adv_estimator_fn(cfg.algorithm.adv_estimator) is not None
    assert get_trainer_cls(cfg.trainer.v1.trainer_mode) is not None
    if cfg.reward.reward_manager.source == "register":
        assert get_reward_manager_cls(cfg.reward.reward_manager.name) is not None
    if cfg.reward.custom_reward_function.path:
        reward_fn = get_custom_reward_fn(cfg)
        assert callable(reward_fn)
    if cfg.trainer.v1.sampler.custom_sampler.path:
        from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

        assert isinstance(_build_sampler(cfg), ReplayBuffer)


def test_env_vars_reach_the_config(tmp_path):
    env = {
        "MODEL_PATH": "/models/m",
        "DATA_DIR": "/data/d",
        "NNODES": "4",
        "GPUS_PER_NODE": "2",
        "PROJECT_NAME": "proj",
    }
    for name in CITED:
        _, cfg = _checked_config(RECIPES / name, tmp_path, env=env)
        assert cfg.actor_rollout_ref.model.path == "/models/m"
        assert cfg.data.train_files == "/data/d/train.parquet" and cfg.data.val_files == "/data/d/test.parquet"
        assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node) == (4, 2)
        assert cfg.trainer.project_name == "proj"


def test_promptcot_recipe_settings(tmp_path):
    _, cfg = _checked_config(RECIPES / "run_promptcot_zero_rl_qwen7b.sh", tmp_path)
    actor = cfg.actor_rollout_ref.actor
    assert cfg.actor_rollout_ref.rollout.n == 16 and actor.optim.lr == 1e-6
    assert actor.clip_ratio_high > actor.clip_ratio_low  # clip-higher
    assert actor.loss_agg_mode == "token-mean"
    sampler = _build_sampler(cfg)
    assert sampler.options.filters == ("acc", "length", "repetition")
    assert (sampler.options.acc.low, sampler.options.acc.high) == (0.1, 0.8)
    assert sampler.max_response_length == cfg.data.max_response_length
    assert cfg.algorithm.adv_estimator == "grpo"
    _, cfg = _checked_config(
        RECIPES / "run_promptcot_zero_rl_qwen7b.sh", tmp_path, env={"ADV": "reinforce_plus_plus_baseline"}
    )
    assert cfg.algorithm.adv_estimator == "reinforce_plus_plus_baseline"


def test_bad_adv_fails_before_verl_starts(tmp_path):
    with pytest.raises(RuntimeError, match="ADV must be grpo or reinforce_plus_plus_baseline, got 'ppo'"):
        capture(RECIPES / "run_promptcot_zero_rl_qwen7b.sh", env={"ADV": "ppo"}, tmp=tmp_path)


def test_unknown_filter_in_a_recipe_fails_at_start_up(tmp_path):
    _, cfg = _checked_config(
        RECIPES / "run_promptcot_zero_rl_qwen7b.sh", tmp_path, "trainer.v1.sampler.sampler_kwargs.filters=[acc,lenght]"
    )
    with pytest.raises(ValueError, match=r"unknown filter 'lenght'.*valid: acc, length, repetition"):
        _build_sampler(cfg)


def test_logic_rl_recipe_settings(tmp_path):
    _, cfg = _checked_config(RECIPES / "run_logic_rl_qwen7b.sh", tmp_path)
    assert cfg.actor_rollout_ref.actor.optim.lr == 4e-7
    assert cfg.actor_rollout_ref.rollout.temperature == 0.7
    assert cfg.data.shuffle is False  # keeps the 3..7-people order of the curriculum file
    assert cfg.algorithm.adv_estimator == "reinforce_plus_plus"
    assert cfg.reward.custom_reward_function.reward_kwargs.scheme == "logicrl"


def test_simplerl_recipe_settings(tmp_path):
    _, cfg = _checked_config(RECIPES / "run_simplerl_qwen_math7b.sh", tmp_path)
    assert cfg.reward.custom_reward_function.reward_kwargs.scheme == "simplerl"
    assert cfg.algorithm.adv_estimator == "grpo" and cfg.actor_rollout_ref.model.path == "Qwen/Qwen2.5-Math-7B"


def test_ttrl_recipe_votes_over_64_and_trains_on_32(tmp_path):
    _, cfg = _checked_config(RECIPES / "run_ttrl_qwen7b.sh", tmp_path)
    assert cfg.actor_rollout_ref.rollout.n == 64
    sampler = _build_sampler(cfg)
    assert sampler.options.vote.enable and sampler.options.vote.data_sources == ("vote",)
    assert sampler.options.vote.train_n == 32 and sampler.options.filters == ()


_NUMBER = re.compile(r"(?<![\w.$])\d")  # a digit that is not part of a name or a ${...} reference


@pytest.mark.parametrize("name", CITED)
def test_every_number_is_cited(name):
    """Numbers live in commented assignments; the verl command line itself has none (only ${variables})."""
    lines = (RECIPES / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "-m verl.trainer.main_ppo" in line)
    for line in lines[:start]:
        code = line.split("#", 1)[0]
        if re.match(r"^\s*\w+=", code) and _NUMBER.search(code.split("=", 1)[1]):
            comment = line.split("#", 1)[1] if "#" in line else ""
            cited = "[" in comment or "cluster shape" in comment  # a [source] tag, or a deployment setting
            assert cited, f"{name}: uncited number in: {line.strip()}"
    for line in lines[start:]:
        stripped = re.sub(r"\$\{?\w+\}?|\$\(\(.*?\)\)", "", line)
        assert not _NUMBER.search(stripped.split("=", 1)[-1]), f"{name}: literal number in the command: {line.strip()}"


def test_pcl_tiny_cpu_recipe_picks_its_value_model(tmp_path):
    _, cfg = _checked_config(RECIPES / "run_pcl_tiny_cpu.sh", tmp_path)
    assert cfg.trainer.v1.trainer_mode == "pcl" and cfg.pcl.value_model == "llm" and cfg.pcl.k == 4
    assert cfg.critic.use_dynamic_bsz and not cfg.critic.enable  # verl's critic keys configure it; no PPO critic
    _, cfg = _checked_config(RECIPES / "run_pcl_tiny_cpu.sh", tmp_path, env={"VALUE_MODEL": "embedding"})
    assert cfg.pcl.value_model == "embedding"
    with pytest.raises(RuntimeError, match="VALUE_MODEL=mlp; valid: embedding, llm"):
        _checked_config(RECIPES / "run_pcl_tiny_cpu.sh", tmp_path, env={"VALUE_MODEL": "mlp"})
