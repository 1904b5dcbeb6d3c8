"""verl_selfplay registers into verl lazily: `import verl` stays cheap, registrations appear when verl loads
the registry module, and arranging them twice is harmless."""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_import_verl_loads_plugin_without_heavy_registries():
    out = _run(
        """
        import sys
        import verl
        print("plugin", "verl_selfplay" in sys.modules)
        print("reward_mgr", "verl.experimental.reward_loop.reward_manager" in sys.modules)
        print("v1", "verl.trainer.ppo.v1" in sys.modules)
        """
    )
    assert "plugin True" in out
    assert "reward_mgr False" in out and "v1 False" in out


def test_reward_manager_registered_when_verl_loads_it():
    out = _run(
        """
        import verl
        import verl_selfplay
        from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
        from verl_selfplay.reward import SelfPlayRewardManager
        import reward_fns
        cls = get_reward_manager_cls("selfplay")
        print("ok", cls is SelfPlayRewardManager)
        verl_selfplay.register_all(); verl_selfplay.register_all()   # idempotent
        print("still", get_reward_manager_cls("selfplay") is SelfPlayRewardManager)
        """
    )
    assert "ok True" in out and "still True" in out


def test_registration_runs_at_once_when_module_already_imported():
    out = _run(
        """
        import importlib, os
        os.environ["VERL_USE_EXTERNAL_PLUGINS"] = "none"     # verl must not load us on its own
        import verl.experimental.reward_loop.reward_manager as rm
        assert "selfplay" not in rm.registry.REWARD_MANAGER
        from verl_selfplay.registry import register_all, registered
        register_all()
        print("registered", "selfplay" in rm.registry.REWARD_MANAGER, len(registered()) >= 1)
        """
    )
    assert "registered True True" in out


def test_importing_our_module_first_still_registers():
    """`import verl_selfplay.reward` pulls verl's reward managers in while our module is half-imported; the
    registration waits for our module to finish instead of re-entering it."""
    out = _run(
        """
        import verl_selfplay.reward as ours
        from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
        print("ok", get_reward_manager_cls("selfplay") is ours.SelfPlayRewardManager)
        """
    )
    assert "ok True" in out


def test_selfplay_manager_scores_with_reward_fns_through_verls_loader():
    """verl's load_reward_manager passes its default_compute_score when no custom function is set; the
    `selfplay` manager must still score with reward_fns, while an explicit custom function wins."""
    out = _run(
        """
        import os
        from hydra import compose, initialize_config_dir
        import verl, reward_fns
        from verl.trainer.ppo.reward import load_reward_manager
        cfg_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
        with initialize_config_dir(config_dir=cfg_dir, version_base=None):
            cfg = compose("ppo_trainer", overrides=["reward.reward_manager.name=selfplay"])
            custom = compose("ppo_trainer", overrides=[
                "reward.reward_manager.name=selfplay",
                "reward.custom_reward_function.path=pkg://reward_fns.logic",
                "reward.custom_reward_function.name=score"])
        m = load_reward_manager(cfg, tokenizer=None)
        print("default", type(m).__name__, m.compute_score is reward_fns.compute_score)
        m2 = load_reward_manager(custom, tokenizer=None)
        print("custom", m2.compute_score is not reward_fns.compute_score)
        """
    )
    assert "default SelfPlayRewardManager True" in out and "custom True" in out


def test_importing_a_module_that_imports_verls_registry_through_another_of_ours_registers_everything():
    """`import verl_selfplay.azr.trainer` imports verl_selfplay.common.sync_trainer, which imports verl's v1 trainer
    package; the registrations that import triggers (pcl and azr trainer modes) must wait until our half-imported
    modules finish, not fail with a circular-import error."""
    out = _run(
        """
        import verl_selfplay.azr.trainer
        from verl.trainer.ppo.v1 import get_trainer_cls
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
        print("azr", get_trainer_cls("azr").__name__, "pcl", get_trainer_cls("pcl").__name__)
        print("trr", get_adv_estimator_fn("task_relative_reinforce_plus_plus").__module__)
        print("loop", _agent_loop_registry["azr"]["_target_"])
        """
    )
    assert "azr AZRTrainer pcl PCLTrainer" in out
    assert "trr verl_selfplay.azr.advantage" in out
    assert "loop verl_selfplay.azr.agent_loop.AZRAgentLoop" in out
