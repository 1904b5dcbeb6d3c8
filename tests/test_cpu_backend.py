"""verl_selfplay.cpu and verl_selfplay.tiny: fast unit tests against verl's real classes and registries.

Each registration is checked in a fresh interpreter (the plugin is loaded by ``import verl``, as in every
Ray process). The HF server is exercised in-process, without Ray: its ``generate`` coroutine and weight
calls are the same code the Ray actor runs. The full loop is in ``test_e2e_cpu.py``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from verl_selfplay import tiny

REPO = Path(__file__).resolve().parents[1]


def _py(code: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )


def _ok(code: str, env: dict[str, str] | None = None) -> str:
    proc = _py(code, env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


CPU = {"VERL_PLATFORM": "cpu"}


# ---------------------------------------------------------------------------------------------- tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny model and data set built through the public CLI (2 SFT steps: fast, not yet accurate)."""
    out = tmp_path_factory.mktemp("tiny")
    cmd = [sys.executable, "-m", "verl_selfplay.tiny", "--out", str(out / "model"), "--data-out", str(out / "data")]
    proc = subprocess.run([*cmd, "--sft-steps", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["parameters"] > 50_000 and summary["vocab"] == tiny.VOCAB_SIZE and summary["sft_steps"] == 2
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_tiny_is_deterministic_given_a_seed(tiny_dir, tmp_path):
    tiny.build(tmp_path / "same", seed=0, sft_steps=2)
    tiny.build(tmp_path / "other", seed=1, sft_steps=2)
    assert _digest(tmp_path / "same") == _digest(tiny_dir / "model")
    assert _digest(tmp_path / "other") != _digest(tiny_dir / "model")


def test_tiny_tokenizer_and_model_fit_the_reward(tiny_dir):
    from transformers import AutoConfig

    tok = tiny.load_tokenizer(tiny_dir / "model")  # as verl loads it
    assert len(tok) == tiny.VOCAB_SIZE == AutoConfig.from_pretrained(tiny_dir / "model").vocab_size
    for tag in tiny.R1_TAGS:  # single tokens that survive verl's skip_special_tokens=True decode
        ids = tok(tag, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.decode(ids, skip_special_tokens=True) == tag
    assert all(len(tok(str(d), add_special_tokens=False).input_ids) == 1 for d in range(10))
    text = tok.apply_chat_template(
        [{"role": "user", "content": "What is 3+4?"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>"


def test_tiny_data_is_scored_by_reward_fns(tiny_dir):
    import pandas as pd

    import reward_fns

    df = pd.read_parquet(tiny_dir / "data" / "train.parquet")
    assert len(df) == 256 and set(df.data_source) == {"math"}
    row = df.iloc[0]
    a, b = row.extra_info["a"], row.extra_info["b"]
    assert row.prompt[0]["content"] == f"What is {a}+{b}?"
    ideal = tiny.addition_example(a, b)["response"]
    gt = row.reward_model["ground_truth"]
    assert reward_fns.compute_score("math", ideal, gt)["score"] == 2.0  # format + correct (R1 scheme)
    wrong = reward_fns.compute_score("math", ideal.replace(f"<answer>{a + b}<", f"<answer>{a + b + 1}<"), gt)
    assert (wrong["score"], wrong["acc"], wrong["format_ok"]) == (1.0, 0.0, True)


def test_tiny_sft_makes_the_model_right_sometimes():
    tok = tiny.build_tokenizer(0)
    model = tiny.build_model(tok, 0)
    losses = tiny.sft(model, tok, steps=20, seed=0)
    assert len(losses) == 20 and losses[-1] < losses[0] / 2


# ------------------------------------------------------------------------------------ batched sampling


def _requests(tok, prompts: list[str], **kw):
    from verl_selfplay.cpu.hf_rollout import Request

    out = []
    for p in prompts:
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_dict=False)
        out.append(Request(prompt_ids=list(ids), **{"max_tokens": 12, **kw}))
    return out


def _teacher_forced_logprobs(model, prompt_ids, token_ids, temperature):
    """What verl's actor computes: log_softmax(logits / T) at the sampled tokens, on the unpadded sequence."""
    seq = torch.tensor([prompt_ids + token_ids])
    with torch.no_grad():
        logits = model(input_ids=seq).logits[0, len(prompt_ids) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(token_ids)[:, None])[:, 0]


@pytest.fixture(scope="module")
def lm(tiny_dir):
    from transformers import AutoModelForCausalLM

    tok = tiny.load_tokenizer(tiny_dir / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny_dir / "model", attn_implementation="sdpa").eval()
    return tok, model


def test_batched_logprobs_match_the_actor_recomputation(lm):
    from verl_selfplay.cpu.hf_rollout import BatchGenerator

    tok, model = lm
    gen = BatchGenerator(model, tok.pad_token_id, [tok.eos_token_id])
    # prompts of different lengths: left padding must not shift positions
    reqs = _requests(tok, ["What is 3+4?", "What is 1+1? Think.", "Sum?"], temperature=0.7)
    results = gen.generate(reqs, seed=0)
    assert all(0 < len(r.token_ids) <= 12 for r in results)
    for req, res in zip(reqs, results, strict=True):
        want = _teacher_forced_logprobs(model, req.prompt_ids, res.token_ids, 0.7)
        assert torch.allclose(torch.tensor(res.log_probs), want, atol=1e-4), (res.log_probs, want)


def test_batched_equals_one_by_one_when_greedy(lm):
    from verl_selfplay.cpu.hf_rollout import BatchGenerator

    tok, model = lm
    gen = BatchGenerator(model, tok.pad_token_id, [tok.eos_token_id])
    reqs = _requests(tok, ["What is 3+4?", "What is 1+1? Think.", "Sum?"], temperature=0.0)
    together = gen.generate(reqs)
    alone = [gen.generate([r])[0] for r in reqs]
    assert [r.token_ids for r in together] == [r.token_ids for r in alone]
    for a, b in zip(together, alone, strict=True):
        assert torch.allclose(torch.tensor(a.log_probs), torch.tensor(b.log_probs), atol=1e-4)


def test_generation_stops_at_eos_and_budget(lm):
    from verl_selfplay.cpu.hf_rollout import BatchGenerator

    tok, model = lm
    eos_now = BatchGenerator(model, tok.pad_token_id, eos_token_ids=list(range(len(tok))))  # every token ends it
    assert all(len(r.token_ids) == 1 for r in eos_now.generate(_requests(tok, ["a", "bb"]), seed=0))
    gen = BatchGenerator(model, tok.pad_token_id, [tok.eos_token_id])
    short, long_ = _requests(tok, ["a", "b"], ignore_eos=True)
    short.max_tokens = 3
    res = gen.generate([short, long_], seed=0)
    assert len(res[0].token_ids) == 3 and len(res[1].token_ids) == 12
    with pytest.raises(ValueError, match="share sampling parameters"):
        gen.generate(_requests(tok, ["a"], temperature=1.0) + _requests(tok, ["b"], temperature=0.5))


# --------------------------------------------------------------------------------------- HF server


@pytest.fixture
def composed(tiny_dir):
    """The CPU preset composed with verl's real config, resolved as verl's TaskRunner resolves it."""
    from _config import compose_verl
    from omegaconf import OmegaConf

    cfg = compose_verl(
        config_name="cpu",
        config_path="pkg://verl_selfplay.config",
        overrides=[
            f"actor_rollout_ref.model.path={tiny_dir / 'model'}",
            "data.max_prompt_length=32",
            "data.max_response_length=16",
            "data.train_batch_size=8",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
            "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
            "algorithm.adv_estimator=grpo",
        ],
    )
    OmegaConf.resolve(cfg)
    return cfg


def test_server_batches_concurrent_requests_and_tags_the_weight_version(composed, lm):
    from verl_selfplay.cpu.hf_rollout import HFServer

    tok, model = lm
    server = HFServer(composed.actor_rollout_ref.rollout, composed.actor_rollout_ref.model)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, return_dict=False
    )

    async def burst():
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
        return await asyncio.gather(*[server.generate(prompt, dict(params), request_id=str(i)) for i in range(8)])

    outs = asyncio.run(burst())
    assert len(outs) == 8 and all(o.log_probs and len(o.log_probs) == len(o.token_ids) <= 16 for o in outs)
    assert all(o.extra_fields["global_steps"] == 0 and o.stop_reason == "completed" for o in outs)
    stats = asyncio.run(server.get_stats())
    assert stats["requests"] == 8 and stats["batches"] < 8  # one burst, not one call per request

    # weight sync: the actor's tensors replace the server's, and the version moves on
    new = {k: torch.zeros_like(v) if k.endswith("norm.weight") else v.clone() for k, v in model.state_dict().items()}
    asyncio.run(server.stage_weights(list(new.items())))
    asyncio.run(server.commit_weights(global_steps=3))
    assert torch.equal(server.generator.model.model.norm.weight, torch.zeros_like(model.model.norm.weight))
    assert asyncio.run(server.get_stats())["global_steps"] == 3
    assert all(o.extra_fields["global_steps"] == 3 for o in asyncio.run(burst()))
    asyncio.run(server.stage_weights([("model.not_a_weight", torch.zeros(1))]))
    with pytest.raises(RuntimeError, match="unexpected keys"):
        asyncio.run(server.commit_weights(4))


# ---------------------------------------------------------------------------------- registrations


def test_plugin_registers_cpu_pieces_when_verl_loads_them():
    out = _ok(
        """
        import verl
        from verl.plugin.platform.platform_manager import PlatformRegistry, get_platform
        from verl.workers.engine.base import EngineRegistry
        import verl.workers.engine.fsdp.transformer_impl as ti
        from verl.workers.rollout.replica import RolloutReplicaRegistry
        from verl.workers.rollout.base import get_rollout_class
        import verl.utils.distributed as dist
        print("platform", "cpu" in PlatformRegistry.registered_names())
        print("detected", get_platform().device_name)  # never auto-detected
        eng = EngineRegistry._engines
        print("engine", eng["language_model"]["fsdp2"]["cpu"] is ti.FSDPEngineWithLMHead,
              eng["value_model"]["fsdp"]["cpu"] is ti.FSDPEngineWithValueHead)
        print("replica", RolloutReplicaRegistry.get("hf").__name__)
        print("adapter", get_rollout_class("hf", "async").__name__)
        print("pg_patched", hasattr(dist.initialize_global_process_group_ray, "__verl_selfplay_cpu__"))
        print("vllm_untouched", RolloutReplicaRegistry._registry["vllm"].__module__)
        """
    )
    assert "platform True" in out and "detected cuda" in out
    assert "engine True True" in out and "replica HFReplica" in out and "adapter HFServerAdapter" in out
    assert "pg_patched False" in out  # not requested: verl's function is untouched
    assert "vllm_untouched verl.workers.rollout.replica" in out


def test_cpu_backend_when_requested():
    """With VERL_PLATFORM=cpu: the cpu platform, a valid gloo process group, and GPU engines refused early."""
    out = _ok(
        """
        import os, torch
        import verl
        from verl.utils.device import get_device_name, get_device_id, get_torch_device, get_nccl_backend, get_resource_name
        dev = get_torch_device()
        dev.empty_cache(); dev.synchronize(); free, total = dev.mem_get_info()
        print(get_device_name(), get_device_id(), get_nccl_backend(), get_resource_name(), 0 < free <= total)
        print("moved", torch.ones(2).to(get_device_id()).device)

        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000))
        import verl.utils.distributed as dist
        try:  # verl's own function: the bug the fix works around is still there
            dist.initialize_global_process_group_ray.__wrapped__()
        except ValueError as e:
            print("stock fails:", "Duplicate device type cpu" in str(e))
        dist.initialize_global_process_group_ray()
        print("backend", torch.distributed.get_backend())
        torch.distributed.destroy_process_group()

        from verl.workers.rollout.replica import RolloutReplicaRegistry
        for name in ("vllm", "sglang", "trtllm"):
            try:
                RolloutReplicaRegistry.get(name)
            except Exception as e:
                print(name, type(e).__name__, "rollout.name=hf" in str(e))
        print("hf", RolloutReplicaRegistry.get("hf").__name__)
        """,
        CPU,
    )
    assert "cpu cpu gloo GPU True" in out and "moved cpu" in out
    assert "stock fails: True" in out and "backend cpu:gloo" in out
    for name in ("vllm", "sglang", "trtllm"):
        assert f"{name} PreflightError True" in out
    assert "hf HFReplica" in out


# ---------------------------------------------------------------------------------- preset + preflight


def test_preset_composes_with_verls_config_and_validates(composed):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    c = composed
    assert c.actor_rollout_ref.rollout.name == "hf" and c.trainer.device == "cpu"
    assert c.actor_rollout_ref.actor.strategy == "fsdp2" and c.actor_rollout_ref.ref.strategy == "fsdp2"
    assert c.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert c.transfer_queue.backend.SimpleStorage.num_data_storage_units == 1
    assert c.ray_kwargs.ray_init.num_gpus == c.trainer.n_gpus_per_node == 1
    assert c.actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype == "fp32"
    assert c.actor_rollout_ref.rollout.n == 1 and c.trainer.total_epochs == 30  # the rest is verl's default
    validate_config(c, use_reference_policy=need_reference_policy(c), use_critic=need_critic(c))


def test_preflight_checks(composed, tiny_dir, tmp_path):
    from verl_selfplay.cpu.preflight import PreflightError, check_config, count_parameters

    check_config(composed, has_gpu=False)  # the tiny model fits
    bad = copy.deepcopy(composed)
    bad.actor_rollout_ref.rollout.name = "vllm"
    with pytest.raises(PreflightError, match=r"rollout.name=vllm needs a GPU.*rollout.name=hf"):
        check_config(bad, has_gpu=False)
    assert count_parameters(tiny_dir / "model") == sum(
        p.numel() for p in tiny.build_model(tiny.load_tokenizer(tiny_dir / "model")).parameters()
    )
    with pytest.raises(PreflightError, match=r"model.path=.* has .*M parameters.*GiB"):
        check_config(composed, has_gpu=False, available=1 << 20)
    few = copy.deepcopy(composed)
    few.ray_kwargs.ray_init.num_gpus = 0
    with pytest.raises(PreflightError, match="ray_kwargs.ray_init.num_gpus"):
        check_config(few, has_gpu=False)


@pytest.mark.parametrize("module", ["preflight", "workarounds", "report"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"verl_selfplay.cpu.{module}"))
    assert result.attempted > 0 and result.failed == 0


def _big_model(path: Path) -> Path:
    from transformers import Qwen2Config

    path.mkdir()
    Qwen2Config(
        hidden_size=8192,
        intermediate_size=29568,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=152064,
    ).save_pretrained(path)  # Qwen2-72B shape, no weights
    return path


@pytest.mark.parametrize("case", ["vllm", "too_big"])
def test_main_ppo_refuses_bad_cpu_configs_before_ray_starts(case, tiny_dir, tmp_path):
    model = _big_model(tmp_path / "big") if case == "too_big" else tiny_dir / "model"
    overrides = [f"actor_rollout_ref.model.path={model}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    if case == "vllm":
        overrides.append("actor_rollout_ref.rollout.name=vllm")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            "--config-path=pkg://verl_selfplay.config",
            "--config-name=cpu",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "VERL_PLATFORM"},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "ray init kwargs" not in out and "Started a local Ray instance" not in out
    if case == "vllm":
        assert "actor_rollout_ref.rollout.name=hf" in out
    else:
        assert "B parameters" in out and "GiB" in out and str(model) in out
