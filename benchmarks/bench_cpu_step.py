"""Step-time breakdown of verl's real trainer on CPU, and batched vs one-at-a-time HF generation.

Two measurements in one run:

1. **A real run.** ``python -m verl.trainer.main_ppo`` with the CPU preset and the tiny model (the e2e
   set-up of ``tests/_e2e.py``: 8 prompts x 4 samples, GRPO, our acc-filter sampler) for ``--steps``
   steps. Prints the median seconds per phase over the steps after the first (generation, old log-prob,
   actor update, weight sync, whole step), the time the ``hf`` server really spent in ``generate``
   (verl's ``timing_s/gen`` is quantised by the replay buffer's TransferQueue polling), the first step
   (warm-up: the agent-loop worker starts lazily) and the start-up time (Ray, TransferQueue, one process
   per role). Regressions in any phase show here.
2. **Batching.** The baseline named in issue 5 is generation "one request at a time". The same
   ``HFServer`` code (in-process, no Ray) serves one step's worth of requests (``--prompts`` x ``--n``,
   sent concurrently as verl's agent loop sends them) with batching on (``max_batch=64``) and off
   (``max_batch=1``), alternating rounds so both see the same machine load; prints requests/s and the ratio.

For reference only (not measured here): the spike behind issue 5 saw 13.6 s for its first step
(generation 2.0 s, old log-prob 0.39 s, update 0.81 s, weight sync 0.04 s) and about 2 minutes per job.

Run: ``nice python benchmarks/bench_cpu_step.py [--steps 4] [--skip-run]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _e2e import run_main_ppo, tiny_assets  # noqa: E402

from verl_selfplay.cpu.report import breakdown, rollout_stats, table  # noqa: E402

SAMPLER = [
    "trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler",
    "trainer.v1.sampler.custom_sampler.name=GroupFilterSampler",
    "+trainer.v1.sampler.sampler_kwargs.poll_interval=0.2",
]


def real_run(steps: int, workdir: Path) -> None:
    """Measurement 1 (see module docstring)."""
    start = time.perf_counter()
    run = run_main_ppo(workdir, SAMPLER, steps=steps)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        print(run.tail(), file=sys.stderr)
        raise SystemExit(f"main_ppo failed with exit code {run.returncode}")
    print(table(run.metrics))
    step_times = [m["timing_s/step"] for m in run.metrics if "timing_s/step" in m]
    phases = breakdown(run.metrics, run.log)
    print(f"\nstep-time breakdown, median of steps 2..{steps} (s)")
    for label, seconds in phases.items():
        print(f"  {label:<38} {seconds:8.3f}")
    gen = rollout_stats(run.log)
    if gen:
        per_batch = sum(g["requests"] for g in gen) / sum(g["batches"] for g in gen)
        print(f"  {'hf server requests per generate call':<38} {per_batch:8.1f}")
    print(f"  {'first step (incl. lazy worker start)':<38} {step_times[0]:8.3f}")
    print(f"  {'start-up + shutdown (wall - steps)':<38} {wall - sum(step_times):8.3f}")
    print(f"  {'whole job, wall':<38} {wall:8.3f}")


def batching(prompts: int, n: int, rounds: int) -> None:
    """Measurement 2 (see module docstring)."""
    import torch
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from verl_selfplay import tiny
    from verl_selfplay.cpu.hf_rollout import HFServer

    torch.set_num_threads(1)  # one core, as the server actor gets in a 2-core run
    model_dir, data_dir = tiny_assets()
    with initialize_config_module("verl_selfplay.config", version_base=None):
        cfg = compose(
            "cpu",
            overrides=[f"actor_rollout_ref.model.path={model_dir}", "data.max_response_length=24"],
        )
    OmegaConf.resolve(cfg)
    tok = tiny.load_tokenizer(model_dir)
    requests = []
    for i in range(prompts):
        msg = [{"role": "user", "content": f"What is {i % 10}+{(i * 7) % 10}?"}]
        ids = tok.apply_chat_template(msg, add_generation_prompt=True, return_dict=False)
        requests += [list(ids)] * n
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    servers = {
        "batched (max_batch=64)": HFServer(cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.model, max_batch=64),
        "one at a time (max_batch=1)": HFServer(
            cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.model, max_batch=1
        ),
    }

    async def serve(server: HFServer) -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*[server.generate(p, dict(params), request_id=str(i)) for i, p in enumerate(requests)])
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {k: [] for k in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            times[name].append(asyncio.run(serve(server)))
    print(f"\nHF generation of one step's requests ({prompts} prompts x {n} samples), median of {rounds} rounds")
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, seconds in med.items():
        print(f"  {name:<30} {seconds:7.3f} s  {len(requests) / seconds:8.1f} requests/s")
    base, ours = med["one at a time (max_batch=1)"], med["batched (max_batch=64)"]
    print(f"  speed-up of batching: {base / ours:.1f}x")


def main() -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="training steps of the real run")
    parser.add_argument("--skip-run", action="store_true", help="only the batching comparison")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.skip_run:
        with tempfile.TemporaryDirectory(prefix="bench_cpu_step_") as d:
            real_run(args.steps, Path(d))
    batching(args.prompts, args.n, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
