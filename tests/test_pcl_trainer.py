"""PCLTrainer inside verl's real v1 training loop on CPU, with verl's real FSDP actor worker group.

Real here: verl's Hydra config (our CPU preset ``verl_selfplay/config/cpu.yaml`` = ``ppo_trainer`` + the CPU
overrides, plus this test's), the trainer registry, verl's ``PPOTrainer.init`` (tokenizer, ``RLHFDataset`` +
``collate_fn`` over a parquet file of real Knights & Knaves puzzles, the Ray resource pool, the
``ActorRolloutRefWorker`` FSDP2 worker group on the tiny model (fixture ``tiny``) on verl_selfplay's ``cpu``
platform, verl's ``RewardLoopManager`` and its reward worker, checkpoint resume), ``PPOTrainer.fit`` / ``step`` /
``_step_once``, the synchronous ``ReplayBuffer``, TransferQueue (the shared Ray + TransferQueue of
``tests/_sampler_harness.py``), the actor's ``compute_log_prob`` (old log-probs) and ``update_actor`` (one FSDP
optimizer step per training step), GRPO advantages, verl's ``Tracking`` logger, verl's checkpoint folders with the
actor's real FSDP checkpoint, and PCL's value model (MiniLM). Rewards are real: ``reward_fns.compute_score`` scores
each scripted response text, in this process, with the arguments verl's reward worker passes (the fake rollout
below scores its responses itself, as verl's agent-loop workers have a reward worker score theirs; the started
reward worker is not called).

Faked: only the inference server, which needs a rollout engine (vLLM/SGLang on GPU, or our ``hf`` replica) and
would make the responses, hence the rewards, depend on a tiny model's sampling instead of a set pass rate:

- ``FakeAgentLoopManager`` (what verl's trainer calls: ``generate_sequences``) answers every prompt with ``n``
  scripted K&K answers, right with a probability set by the puzzle's number of people (:func:`pass_rate`),
  scored by ``reward_fns.compute_score`` and written to TransferQueue by ``tests/_sampler_harness.py``'s
  :func:`~_sampler_harness.submit` (the one copy of verl's ``AgentLoopWorkerTQ`` trajectory layout in the tests);
- ``FakeInferenceServer`` / ``FakeWeightSync``: verl's ``LLMServerManager`` (no rollout replica is started) and
  ``CheckpointEngineManager``, whose only job is to push the actor's weights into those replicas; with no replica
  there is nothing to receive them (verl's worker-side ``update_weights`` needs its colocated rollout engine).

Tests that only exercise prompt selection and configuration build the trainer without workers
(``make_trainer(..., workers=False)``: verl's tokenizer, dataloader and PCL pool, no Ray actors).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import reward_fns  # noqa: E402
from reward_fns.logic import generate_puzzle  # noqa: E402

N_ROLLOUT = 4
M = 4  # data.train_batch_size


def pass_rate(n_people: int) -> float:
    """The scripted policy's pass rate: easy small puzzles, hard large ones."""
    return {2: 1.0, 3: 0.9, 4: 0.6, 5: 0.5, 6: 0.3, 7: 0.0, 8: 0.0}[n_people]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny):
    """The tiny model (session fixture ``tiny``) and K&K parquet files."""
    model_dir, _ = tiny
    root = tmp_path_factory.mktemp("pcl_trainer")
    (root / "model").symlink_to(model_dir, target_is_directory=True)
    rows = []
    for i, n in enumerate([2, 3, 4, 5, 6, 7, 8] * 4):  # 28 prompts
        p = generate_puzzle(n, seed=i)
        rows.append(
            {
                "data_source": "knights_knaves",
                "prompt": [{"role": "user", "content": p.text}],
                "ability": "logic",
                "reward_model": {"style": "rule", "ground_truth": json.dumps(p.ground_truth())},
                "extra_info": {"index": i, "n_people": n},
            }
        )
    pd.DataFrame(rows).to_parquet(root / "train.parquet")
    pd.DataFrame(rows[:4]).to_parquet(root / "val.parquet")
    return root


def compose(workdir, *extra: str):
    """verl's config through our CPU preset (what ``main_ppo --config-name=cpu`` runs) with this test's overrides."""
    from _config import compose_verl

    return compose_verl(
        config_name="cpu",
        config_path="pkg://verl_selfplay.config",
        overrides=[
            f"actor_rollout_ref.model.path={workdir / 'model'}",
            f"actor_rollout_ref.rollout.n={N_ROLLOUT}",
            f"actor_rollout_ref.actor.ppo_mini_batch_size={M}",
            f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={M * N_ROLLOUT}",
            f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={M * N_ROLLOUT}",
            "actor_rollout_ref.actor.use_kl_loss=False",
            # the fake inference server returns no log-probs: old log-probs come from the actor (compute_log_prob)
            "actor_rollout_ref.rollout.calculate_log_probs=False",
            f"data.train_files={workdir / 'train.parquet'}",
            f"data.val_files={workdir / 'val.parquet'}",
            f"data.train_batch_size={M}",
            "data.max_prompt_length=4096",
            "data.max_response_length=16",
            "algorithm.adv_estimator=grpo",
            "trainer.v1.trainer_mode=pcl",
            "trainer.logger=[console]",
            "trainer.val_before_train=False",
            "trainer.test_freq=-1",
            f"trainer.default_local_dir={workdir / 'ckpt'}",
            "+pcl.k=3",
            "+pcl.metric=acc",
            "+pcl.value_model_kwargs.max_seq_length=64",
            *extra,
        ],
    )


def kk_response(ground_truth: str, correct: bool) -> str:
    """A formatted K&K answer: the solution, or the solution with the first person's role flipped."""
    lines = json.loads(ground_truth)["solution_text_format"].splitlines()
    claims = [line.split(") ", 1)[1] for line in lines]
    if not correct:
        role = "knave" if claims[0].endswith("knight") else "knight"
        claims[0] = claims[0].rsplit(" ", 1)[0] + " " + role
    return f"<think>I check every statement.</think><answer>{', '.join(claims)}</answer>"


class FakeAgentLoopManager:
    """The inference server, the one fake of this module: ``n`` scripted responses per prompt.

    Each response is a right or wrong K&K answer (right with probability :func:`pass_rate` of the puzzle's size),
    scored by ``reward_fn`` (default ``reward_fns.compute_score``, called as verl's ``NaiveRewardManager`` calls
    it) and written to TransferQueue by :func:`_sampler_harness.submit` in verl's ``AgentLoopWorkerTQ`` layout.
    ``broken_metrics``: the reward function's ``acc`` goes missing on 8-person puzzles and is NaN on the first
    rollout of 7-person ones (PCL must keep those prompts out of its value update).
    """

    def __init__(self, n: int, seed: int = 0, broken_metrics: bool = True, reward_fn=reward_fns.compute_score):
        self.n, self.reward_fn = n, reward_fn
        self.rng = np.random.default_rng(seed)
        self.broken_metrics = broken_metrics
        self.submitted: list[int] = []  # n_people of every prompt sent to generation
        self.groups: list[tuple[int, int, list[float]]] = []  # (global step, n_people, acc of every rollout)

    def _scorer(self, n_people: int, accs: list[float]):
        """``reward_fn``, recording each rollout's ``acc`` (NaN if missing) and breaking it if asked."""

        def score(**kwargs):
            result = self.reward_fn(**kwargs)
            if isinstance(result, dict) and self.broken_metrics:
                if n_people == 8:
                    result = {k: v for k, v in result.items() if k != "acc"}  # a missing metric
                elif n_people == 7 and not accs:
                    result = {**result, "acc": float("nan")}  # a NaN metric on the first rollout
            acc = result.get("acc", float("nan")) if isinstance(result, dict) else result
            accs.append(float(acc))
            return result

        return score

    def generate_sequences(self, batch) -> None:
        import transfer_queue as tq
        from _sampler_harness import Group, Rollout, submit
        from tensordict import NonTensorData

        global_steps = batch["global_steps"]
        global_steps = int(global_steps.data if isinstance(global_steps, NonTensorData) else global_steps)
        for i in range(len(batch)):
            uid = batch["uid"][i]
            extra_info = dict(batch["extra_info"][i])
            ground_truth = batch["reward_model"][i]["ground_truth"]
            n_people = int(extra_info["n_people"])
            self.submitted.append(n_people)
            rollouts = [
                Rollout(text=kk_response(ground_truth, correct=bool(self.rng.random() < pass_rate(n_people))))
                for _ in range(self.n)
            ]
            accs: list[float] = []
            group = Group(
                rollouts,
                data_source=batch["data_source"][i],
                ground_truth=ground_truth,
                extra_info=extra_info,
                reward_fn=self._scorer(n_people, accs),
            )
            submit(tq, uid, group, global_steps=global_steps)
            self.groups.append((global_steps, n_people, accs))


class FakeInferenceServer:
    """verl's ``LLMServerManager`` without rollout replicas (the inference server is :class:`FakeAgentLoopManager`)."""

    @classmethod
    def create(cls, *args, **kwargs):
        return cls()

    def get_replicas(self) -> list:
        return []

    def get_client(self):
        raise AssertionError("the fake rollout never asks for an LLM client")


class FakeWeightSync:
    """verl's ``CheckpointEngineManager``: pushes actor weights into the rollout replicas; there are none."""

    def __init__(self, *args, **kwargs):
        self.synced_steps: list[int] = []

    def update_weights(self, global_steps=None):
        self.synced_steps.append(global_steps)
        return {}

    def sleep_replicas(self):
        return None


@pytest.fixture(scope="module")
def cpu_platform():
    """verl's ``cpu`` platform in this driver process for the module's tests (the Ray workers get it from
    ``VERL_PLATFORM=cpu`` in the shared Ray's runtime environment)."""
    import verl.plugin.platform.platform_manager as platform_manager

    from verl_selfplay.cpu.platform import CPUPlatform

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERL_PLATFORM", "cpu")
        mp.setattr(platform_manager, "_current_platform", CPUPlatform())
        yield


def make_trainer(cfg, workers: bool = True):
    """PCLTrainer; ``workers=True``: verl's own ``init()`` (worker groups and all), the inference server faked.

    ``workers=False``: only verl's tokenizer/dataloader set-up and the PCL pool, for tests of selection and
    configuration that never run a step (starting an FSDP worker costs seconds each time).
    """
    import verl.trainer.ppo.v1.trainer_base as trainer_base
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(cfg)
    if not workers:
        trainer._init_tokenizer()
        trainer._init_dataloader()
        trainer.global_steps = 0
        return trainer
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_base, "LLMServerManager", FakeInferenceServer)
        mp.setattr(trainer_base, "CheckpointEngineManager", FakeWeightSync)
        trainer.init()
    return trainer


def release(trainer) -> None:
    """Stop ``trainer``'s Ray workers and free their placement groups (the shared Ray has one logical GPU)."""
    import ray
    from ray.util.placement_group import remove_placement_group

    handles = list(getattr(trainer.actor_rollout_wg, "_workers", []))
    handles += list(trainer.reward_loop_manager.reward_loop_worker_handles or [])
    for handle in handles:
        with contextlib.suppress(Exception):
            ray.kill(handle)
    for pool in trainer.resource_pool_manager.resource_pool_dict.values():
        for pg in pool.pgs or []:
            with contextlib.suppress(Exception):
                remove_placement_group(pg)
        pool.pgs = None


@pytest.fixture
def trainers(cpu_platform, transfer_queue):
    """``make_trainer`` with workers, each trainer released after the test."""
    made = []

    def make(cfg):
        trainer = make_trainer(cfg)
        made.append(trainer)
        return trainer

    yield make
    for trainer in made:
        release(trainer)


@pytest.fixture(scope="module")
def transfer_queue():
    """TransferQueue on a local Ray instance (one storage unit), shared with the sampler tests of this process."""
    from _sampler_harness import clear, shared_tq

    tq = shared_tq()
    yield tq
    clear(tq)


def test_doctests_and_registration():
    import doctest

    from verl.trainer.ppo.v1 import get_trainer_cls

    from verl_selfplay.pcl import trainer as pcl_trainer

    assert doctest.testmod(pcl_trainer).failed == 0
    assert get_trainer_cls("pcl") is pcl_trainer.PCLTrainer
    pcl_trainer.register()  # idempotent
    assert get_trainer_cls("pcl") is pcl_trainer.PCLTrainer


def test_verl_finds_the_pcl_trainer_through_the_plugin_alone():
    """In a fresh process, verl's own import of its v1 trainer package registers mode "pcl" (lazily)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        import verl
        assert "verl_selfplay.pcl.trainer" not in sys.modules
        from verl.trainer.ppo.v1 import get_trainer_cls
        cls = get_trainer_cls("pcl")
        print(cls.__module__, cls.__name__, "sentence_transformers" in sys.modules)
        """
    )
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-3:] == ["verl_selfplay.pcl.trainer", "PCLTrainer", "False"]


def test_bad_pcl_config_fails_at_start_naming_the_key(workdir):
    from verl_selfplay.pcl.trainer import PCLTrainer

    for override, key in [
        ("++pcl.k=0", "pcl.k"),
        ("++pcl.tau=1.5", "pcl.tau"),
        ("+pcl.value_model=mlp", "pcl.value_model"),
    ]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            PCLTrainer(compose(workdir, override))
    trainer = PCLTrainer(compose(workdir, "data.train_batch_size=64"))  # 64 > 28 prompts
    trainer._init_tokenizer()
    with pytest.raises(ValueError, match=r"data\.train_batch_size=64"):
        trainer._init_dataloader()


def test_pcl_mode_keeps_verl_sync_semantics(workdir):
    """A mode name other than "sync" would give verl's async replay buffer and gen_batch_size=1."""
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

    trainer = make_trainer(compose(workdir), workers=False)
    assert type(trainer.replay_buffer) is ReplayBuffer and not isinstance(trainer.replay_buffer, ReplayBufferAsync)
    assert trainer.replay_buffer.gen_batch_size == M
    assert trainer.config.data.get("gen_batch_size", None) in (None, M)
    assert trainer.registered_mode == "pcl" and trainer.trainer_mode == "sync"


def test_pcl_enable_false_is_plain_verl_sync(workdir):
    trainer = make_trainer(compose(workdir, "+pcl.enable=False"), workers=False)
    assert trainer.value_model is None and trainer.pool is None
    batch = trainer._next_train_batch()  # verl's own dataloader path
    assert len(batch) == M


def test_predict_failure_falls_back_to_pool_order(workdir, caplog):
    trainer = make_trainer(compose(workdir), workers=False)
    expected = trainer.pool.draw(3 * M)[:M]

    def broken(prompts):
        raise RuntimeError("value server down")

    trainer.value_model.predict = broken
    with caplog.at_level(logging.WARNING):
        batch = trainer._next_train_batch()
    assert len(batch) == M
    assert [int(i) for i in batch["index"]] == [int(trainer.train_dataset[i]["index"]) for i in expected]
    assert "value server down" in caplog.text
    assert trainer._step_stats["predict_fallback"] == 1.0


def test_fit_selects_logs_and_resumes_exactly(workdir, trainers, monkeypatch):
    from verl.utils.tracking import Tracking

    logged: list[dict] = []
    monkeypatch.setattr(Tracking, "log", lambda self, data, step, **kw: logged.append(dict(data)))

    steps = 4
    cfg = compose(workdir, f"trainer.total_training_steps={steps}", f"trainer.save_freq={steps}")
    trainer = trainers(cfg)
    rollout = FakeAgentLoopManager(N_ROLLOUT)
    trainer.fit(rollout)

    assert len(logged) == steps
    last = logged[-1]
    for key in (
        "pcl/effective_ratio",
        "pcl/value_mse",
        "pcl/calibration_error",
        "pcl/predicted_reward/mean",
        "pcl/actual_reward/mean",
        "pcl/time/selection_s",
        "pcl/time/generation_s",
        "pcl/skipped_rewards",
    ):
        assert key in last and np.isfinite(last[key]), key
    assert all(m["pcl/candidates"] == 3 * M for m in logged)
    # verl's FSDP actor update ran every step (one optimizer step: ppo_mini_batch_size = train_batch_size)
    assert all(np.isfinite(m["actor/pg_loss"]) and np.isfinite(m["actor/grad_norm"]) for m in logged)
    assert trainer.checkpoint_manager.synced_steps == list(range(steps + 1))  # after init, then after each step
    assert trainer.value_model.updates == steps
    # 7- and 8-person puzzles report a NaN / missing `acc`: counted, and kept out of the value model.
    skipped = sum(m["pcl/skipped_rewards"] for m in logged)
    assert skipped == sum(1 for n in rollout.submitted if n >= 7)
    assert all(np.isfinite(t).all() for _, t in trainer.value_model._replay)
    # Effective ratio of the last step: the share of its prompts whose finite accs are not all equal.
    last_groups = [accs for step, _, accs in rollout.groups if step == steps]
    mixed = [len({a for a in accs if np.isfinite(a)}) > 1 and sum(np.isfinite(accs)) >= 2 for accs in last_groups]
    assert last["pcl/effective_ratio"] == pytest.approx(sum(mixed) / len(last_groups))
    assert len(last_groups) == M

    folder = os.path.join(cfg.trainer.default_local_dir, f"global_step_{steps}")
    assert os.path.exists(os.path.join(folder, "pcl_state.pt"))
    assert os.listdir(os.path.join(folder, "actor"))  # the actor's own FSDP checkpoint
    saved = trainer.pcl_state_dict()
    probe = [trainer.train_dataset[i]["raw_prompt"][0]["content"] for i in range(7)]

    release(trainer)  # its FSDP worker holds the one logical GPU
    resumed = trainers(compose(workdir, f"trainer.total_training_steps={steps}"))  # loads the actor checkpoint
    assert resumed.global_steps == steps
    assert resumed.pool.state_dict() == saved["pool"]
    got = resumed.value_model.state_dict()
    for name, tensor in saved["value_model"]["head"].items():
        assert torch.equal(got["head"][name], tensor), name
    assert got["updates"] == saved["value_model"]["updates"]
    assert len(got["replay"]) == len(saved["value_model"]["replay"]) > 0
    for (e1, t1), (e2, t2) in zip(got["replay"], saved["value_model"]["replay"], strict=True):
        assert torch.equal(e1, e2) and torch.equal(t1, t2)
    assert np.array_equal(resumed.value_model.predict(probe), trainer.value_model.predict(probe))
    # The next selection is the same in both: same candidates, same model, same choice.
    a, b = trainer._next_train_batch(), resumed._next_train_batch()
    assert [int(i) for i in a["index"]] == [int(i) for i in b["index"]]


GROUP_FILTER = (
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    "+trainer.v1.sampler.sampler_kwargs.filters=[acc]",
    "+trainer.v1.sampler.sampler_kwargs.acc.low=0.1",
    "+trainer.v1.sampler.sampler_kwargs.acc.high=0.8",
    "+trainer.v1.sampler.sampler_kwargs.max_extra_gen_rounds=2",
    "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.01",
)


def value_model_error(trainer) -> tuple[float, float, float]:
    """V against the scripted pass rates on all 28 training prompts: (MSE, mean signed error on the easy prompts
    with pass rate > 0.8, on the hard prompts with pass rate < 0.1), i.e. outside the acc filter's window."""
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    texts = [row["raw_prompt"][-1]["content"] for row in rows]
    truth = np.array([pass_rate(int(row["extra_info"]["n_people"])) for row in rows])
    err = trainer.value_model.predict(texts) - truth
    return float(np.mean(err**2)), float(np.mean(err[truth > 0.8])), float(np.mean(err[truth < 0.1]))


def test_value_model_learns_from_groups_the_filter_rejects(workdir, trainers, monkeypatch, capsys):
    """PCL + the real GroupFilterSampler (acc in [0.1, 0.8]): V is fitted on every scored prompt, the rejected,
    surplus and refilled ones included, with the means the rollout produced (not only the survivors' means)."""
    from verl.utils.tracking import Tracking

    from verl_selfplay.filters.sampler import GroupFilterSampler

    logged: list[dict] = []
    monkeypatch.setattr(Tracking, "log", lambda self, data, step, **kw: logged.append(dict(data)))
    steps = 6
    cfg = compose(workdir, f"trainer.total_training_steps={steps}", "trainer.resume_mode=disable", *GROUP_FILTER)
    trainer = trainers(cfg)
    assert isinstance(trainer.replay_buffer, GroupFilterSampler)
    fitted: list[float] = []
    update = trainer.value_model.update

    def spy(prompts, mean_rewards):
        fitted.extend(float(r) for r in mean_rewards)
        return update(prompts, mean_rewards)

    trainer.value_model.update = spy
    rollout = FakeAgentLoopManager(N_ROLLOUT, broken_metrics=False)
    trainer.fit(rollout)

    mse, easy, hard = value_model_error(trainer)
    with capsys.disabled():
        print(f"\n[PCL + acc filter] V after {steps} steps: MSE {mse:.4f}, bias easy {easy:+.3f}, hard {hard:+.3f}")
    assert len(logged) == steps
    produced = sorted(float(np.mean(accs)) for _, _, accs in rollout.groups)
    assert len(produced) > steps * M  # the filter rejected groups and the sampler refilled
    assert sorted(fitted) == pytest.approx(produced)  # every scored prompt, once, with its true mean
    assert any(t < 0.1 or t > 0.8 for t in fitted)  # targets outside the filter's window reach V
    assert sum(m["pcl/unreturned_prompts"] for m in logged) == 0
    assert len(trainer.replay_buffer.scored_groups) == 0  # nothing left behind between steps


def test_bounded_value_model_refuses_a_reward_outside_0_1_at_start_up(workdir):
    """reward_fns' schemes score outside [0, 1] (r1: 0..2): known before any worker starts."""
    from verl_selfplay.pcl.trainer import PCLTrainer

    reward_fns = (
        "reward.custom_reward_function.path=pkg://reward_fns",
        "reward.custom_reward_function.name=compute_score",
    )
    with pytest.raises(ValueError, match=r"pcl\.metric='reward' takes values in \[-3, 3\]"):
        PCLTrainer(compose(workdir, *reward_fns, "++pcl.metric=reward"))
    with pytest.raises(ValueError, match=r"pcl\.metric='reward' takes values in \[0, 2\] \(reward_fns scheme r1\)"):
        PCLTrainer(
            compose(
                workdir, *reward_fns, "++pcl.metric=reward", "+reward.custom_reward_function.reward_kwargs.scheme=r1"
            )
        )
    # an unbounded head may fit any reward; acc is a pass rate
    PCLTrainer(compose(workdir, *reward_fns, "++pcl.metric=reward", "+pcl.value_model_kwargs.bounded=false"))
    PCLTrainer(compose(workdir, *reward_fns))


def test_bounded_value_model_refuses_a_metric_outside_0_1_at_the_first_step(workdir, trainers):
    """A reward function start-up knows nothing about: the first step that observes a value outside [0, 1] fails,
    naming pcl.metric, before V is fitted to it."""

    def doubled(**kwargs) -> float:  # a custom reward function scoring 0 or 2
        return 2.0 * reward_fns.compute_score(**kwargs)["acc"]

    cfg = compose(workdir, "trainer.total_training_steps=1", "trainer.resume_mode=disable", "++pcl.metric=reward")
    trainer = trainers(cfg)
    rollout = FakeAgentLoopManager(N_ROLLOUT, broken_metrics=False, reward_fn=doubled)
    with pytest.raises(ValueError, match=r"pcl\.metric='reward' takes values in \[0, 2\] \(observed at step 1\)"):
        trainer.fit(rollout)
    assert trainer.value_model.updates == 0


def test_recipe_turns_pcl_on_with_the_papers_settings(tmp_path):
    """recipes/run_pcl_qwen3_8b.sh selects this trainer and passes pcl.* values that validate."""
    from _recipes import RECIPES, capture
    from _recipes import compose as compose_recipe
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import get_trainer_cls

    from verl_selfplay.pcl.selection import PCLConfig
    from verl_selfplay.pcl.trainer import PCLTrainer

    (call,) = capture(RECIPES / "run_pcl_qwen3_8b.sh", tmp=tmp_path)
    cfg = compose_recipe(call)
    assert get_trainer_cls(cfg.trainer.v1.trainer_mode) is PCLTrainer
    pcl = PCLConfig.from_mapping(OmegaConf.to_container(cfg.pcl))
    assert (pcl.enable, pcl.k, pcl.tau, pcl.value_model, pcl.metric) == (True, 4, 0.5, "embedding", "acc")
    assert (cfg.data.train_batch_size, cfg.actor_rollout_ref.rollout.n) == (512, 16)
    assert cfg.algorithm.adv_estimator == "grpo"
