"""GRPO with TRL's GRPOTrainer on our rewards, unchanged (``reward_fns.integrations.trl.reward_func``).

    pip install -e ".[trl]"
    python examples/trl_grpo.py [--model PATH_OR_HUB_NAME] [--out DIR] [--max-steps 2]

The data set is single-digit addition in TRL's conversational format, the gold answer in the column ``ground_truth``;
the reward is ``compute_score("math", ...)`` (R1 scheme: 1 for the format + 1 if right). Without ``--model`` a tiny
Qwen2 with a little addition SFT is built locally (``verl_selfplay.tiny``), so the example runs offline on a CPU.
"""

import argparse
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from reward_fns.integrations.trl import reward_func


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a causal LM with a chat template (default: a tiny one built locally)")
    parser.add_argument("--out", default="trl_grpo_out", help="output folder")
    parser.add_argument("--max-steps", type=int, default=2)
    args = parser.parse_args()
    model = args.model
    if model is None:
        from verl_selfplay import tiny

        model = str(Path(args.out) / "tiny_model")
        tiny.build(model, seed=0, sft_steps=200)
    prompts = [(f"What is {a}+{b}?", str(a + b)) for a in range(10) for b in range(10)]
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "ground_truth": g} for q, g in prompts])
    config = GRPOConfig(
        output_dir=str(Path(args.out) / "grpo"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=32,
        max_steps=args.max_steps,
        logging_steps=1,
        learning_rate=1e-4,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_func("math")], args=config, train_dataset=data)
    trainer.train()
    for log in (h for h in trainer.state.log_history if "reward" in h):
        mean, acc = log["rewards/reward_fns_math/mean"], log.get("reward_fns_math/acc", float("nan"))
        print(f"step {log['step']}: reward={log['reward']:.3f} rewards/reward_fns_math/mean={mean:.3f} acc={acc:.3f}")


if __name__ == "__main__":
    main()
