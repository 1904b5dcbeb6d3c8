"""Run verl's real ``main_ppo`` on CPU with the tiny model, for end-to-end tests (shared helper).

Usage from any test (``tests/`` is on ``pythonpath``)::

    from _e2e import run_main_ppo

    @pytest.mark.e2e
    def test_my_feature(tmp_path):
        run = run_main_ppo(tmp_path, ["algorithm.adv_estimator=my_est"], steps=2)
        assert run.returncode == 0, run.tail()
        assert run.metrics[-1]["my/metric"] > 0

The run is ``python -m verl.trainer.main_ppo`` with verl_selfplay's CPU preset (``--config-name=cpu``),
the tiny addition model and data (built once per machine and cached, see :func:`tiny_assets`),
``reward_fns.compute_score`` as the reward function (data source ``math``, R1 scheme), GRPO with 4 samples per prompt, and verl's
``file`` logger, whose JSONL is parsed into one metrics dict per training step. Extra ``overrides``
come last, so they win over the defaults in :func:`base_overrides`. When the subprocess ends (or
times out), every process it started, Ray's included, is killed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from verl_selfplay.cpu.report import read_metrics

REPO = Path(__file__).resolve().parent.parent
TINY_SEED = 0
TINY_SFT_STEPS = 200
DEFAULT_TIMEOUT_S = 540


class E2ERun(NamedTuple):
    """The outcome of one ``main_ppo`` run: exit code, one metrics dict per logged step, and the log."""

    returncode: int
    metrics: list[dict[str, Any]]
    log: str

    def series(self, key: str) -> list[Any]:
        """The value of metric ``key`` at every step that logged it."""
        return [m[key] for m in self.metrics if key in m]

    def tail(self, n: int = 6000) -> str:
        """The end of the log, for assertion messages."""
        return self.log[-n:]


def _tiny_key(*args: str) -> str:
    src = (REPO / "verl_selfplay" / "tiny.py").read_bytes()
    return hashlib.sha256(src + f"{TINY_SEED}/{TINY_SFT_STEPS}/{'/'.join(args)}".encode()).hexdigest()[:12]


def tiny_assets(root: str | os.PathLike | None = None, *, azr: bool = False, math: bool = False) -> tuple[Path, Path]:
    """``(model_dir, data_dir)`` of the tiny model and its data, built once and cached.

    ``azr=False``: the addition model and data; ``azr=True``: the AZR model (``python -m verl_selfplay.tiny --azr``,
    its default SFT) and AZR's validation tasks; ``math=True``: the math self-play model (``--selfplay-math``, its
    default SFT), its seed problems (``data_dir / "seeds.jsonl"``) and validation problems. The cache lives in
    ``$VERL_SELFPLAY_TINY_CACHE`` (default: the temp dir) under a key that changes with ``verl_selfplay/tiny.py``;
    concurrent builders race safely (atomic rename).
    """
    base = Path(root or os.environ.get("VERL_SELFPLAY_TINY_CACHE") or tempfile.gettempdir())
    if azr and math:
        raise ValueError("tiny_assets: azr=True and math=True are two different models")
    variant = "azr" if azr else "selfplay_math" if math else ""
    name = f"verl_selfplay_tiny_{variant}" if variant else "verl_selfplay_tiny"
    target = base / f"{name}_{_tiny_key(variant) if variant else _tiny_key()}"
    if not (target / "DONE").exists():
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=base))
        cmd = [sys.executable, "-m", "verl_selfplay.tiny", "--out", str(staging / "model")]
        cmd += ["--data-out", str(staging / "data"), "--seed", str(TINY_SEED)]
        cmd += [f"--{variant.replace('_', '-')}"] if variant else ["--sft-steps", str(TINY_SFT_STEPS)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"verl_selfplay.tiny failed:\n{proc.stderr[-3000:]}")
        (staging / "DONE").write_text(proc.stdout)
        try:
            staging.rename(target)
        except OSError:  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return target / "model", target / "data"


def base_overrides(tmp_path: Path, model_dir: Path, data_dir: Path, steps: int) -> list[str]:
    """The overrides every e2e run starts from (the CPU preset supplies the CPU-specific ones)."""
    return [
        f"data.train_files={data_dir / 'train.parquet'}",
        f"data.val_files={data_dir / 'test.parquet'}",
        "data.train_batch_size=8",
        "data.max_prompt_length=32",
        "data.max_response_length=24",
        f"actor_rollout_ref.model.path={model_dir}",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.actor.use_kl_loss=false",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=false",
        "reward.custom_reward_function.path=pkg://reward_fns",
        "reward.custom_reward_function.name=compute_score",
        "trainer.logger=[console,file]",
        "trainer.project_name=verl_selfplay_e2e",
        f"trainer.experiment_name={tmp_path.name}",
        f"trainer.default_local_dir={tmp_path / 'checkpoints'}",
        f"trainer.total_training_steps={steps}",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]


def _session_processes(sid: int) -> list[int]:
    import psutil

    pids = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.info["pid"]) == sid and p.info["pid"] != os.getpid():
                pids.append(p.info["pid"])
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def kill_session(sid: int, grace_s: float = 5.0) -> None:
    """Terminate every process of session ``sid`` (the run and whatever it spawned: Ray's raylet, GCS, workers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _session_processes(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _session_processes(sid):
            time.sleep(0.2)


def run_main_ppo(
    tmp_path: str | os.PathLike,
    overrides: Sequence[str] = (),
    steps: int = 2,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    env: dict[str, str] | None = None,
    assets: tuple[Path, Path] | None = None,
) -> E2ERun:
    """Run ``python -m verl.trainer.main_ppo`` on CPU for ``steps`` steps; see the module docstring.

    ``overrides`` are Hydra overrides appended after :func:`base_overrides`; ``env`` adds environment
    variables. Never raises for a failed run: check ``returncode`` (``-9`` on timeout).
    """
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    model_dir, data_dir = assets or tiny_assets()
    metrics_file = tmp_path / "metrics.jsonl"
    metrics_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        "--config-path=pkg://verl_selfplay.config",
        "--config-name=cpu",
        *base_overrides(tmp_path, model_dir, data_dir, steps),
        *overrides,
    ]
    run_env = {
        **os.environ,
        "VERL_FILE_LOGGER_PATH": str(metrics_file),
        "PYTHONUNBUFFERED": "1",
        "RAY_DEDUP_LOGS": "0",
        "RAY_DISABLE_USAGE_STATS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    log_path = tmp_path / "main_ppo.log"
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=run_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = -9
        finally:
            kill_session(proc.pid)
            proc.wait()
    return E2ERun(returncode, read_metrics(metrics_file), log_path.read_text(errors="replace"))
