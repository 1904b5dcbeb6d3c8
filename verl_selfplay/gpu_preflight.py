"""Start-up checks of the GPU recipes: fail in seconds, naming what is missing, before verl starts Ray.

Every GPU recipe runs, before ``verl.trainer.main_ppo``::

    python3 -m verl_selfplay.gpu_preflight --model "$MODEL_PATH" --gpus "$GPUS_PER_NODE" --need vllm

It checks, on the machine that launches the run (the head node):

- **GPUs**: torch is installed, is a CUDA build, and sees at least ``--gpus`` devices
  (``torch.cuda.device_count()``, so ``CUDA_VISIBLE_DEVICES`` counts);
- **the model**: ``--model`` is a local model folder (``config.json`` plus weights), or a Hugging Face id
  (``Qwen/Qwen2.5-7B``) already in the local Hugging Face cache. An id that is not cached fails on purpose: every
  verl worker on every node would otherwise download the weights on its own, and compute nodes are often offline;
  ``huggingface-cli download <id>`` fixes it. Remote paths (``hdfs://...``) are left to verl;
- **packages**: every ``--need`` module is importable (found with ``importlib.util.find_spec``, never imported:
  importing vLLM takes seconds), e.g. vLLM, which comes with the ``gpu`` extra.

All problems are reported at once, each with its fix, and the exit status is 1; never a stack trace. Everything
passes: it prints one ``preflight: ok`` line and exits 0. ``SKIP_PREFLIGHT=1`` skips the checks (exit 0), e.g. when
the script runs on a login node that only submits the job, or on accelerators that torch does not report as CUDA.

The module imports nothing heavy at import time; only the GPU check imports torch (about 2-3 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SKIP_ENV = "SKIP_PREFLIGHT"
GPU_EXTRA = 'pip install -e ".[gpu]"'
# what installs each module a recipe may --need
INSTALL = {"vllm": GPU_EXTRA, "flash_attn": GPU_EXTRA, "sglang": 'pip install "verl[sglang]"'}
CPU_RECIPES = ("recipes/run_azr_tiny_cpu.sh", "recipes/run_tiny_cpu.sh")  # the CPU hint: the first that exists
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Problem:
    """One reason the run cannot start: ``what`` is missing, and how to ``fix`` it."""

    what: str
    fix: str


# ------------------------------------------------------------------------------------------------ model
def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved as ``huggingface_hub`` resolves it (``HF_HUB_CACHE``, ``HF_HOME``...)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in WEIGHT_GLOBS)


def cached_snapshot(repo_id: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """A complete snapshot (``config.json`` and weights) of ``repo_id`` in the hub cache, or ``None``.

    >>> cached_snapshot("Qwen/Qwen2.5-7B", cache_dir="/nonexistent") is None
    True
    """
    snapshots = Path(cache_dir or hub_cache_dir()) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for snapshot in sorted(snapshots.iterdir()):
        if (snapshot / "config.json").is_file() and _has_weights(snapshot):
            return snapshot
    return None


def check_model(path: str, cache_dir: str | os.PathLike | None = None) -> Problem | None:
    """``None`` if ``path`` is a usable model: a local model folder, or a Hugging Face id in the local cache.

    >>> check_model("/nonexistent/qwen").what
    'MODEL_PATH=/nonexistent/qwen does not exist'
    >>> check_model("Qwen/Qwen2.5-7B", cache_dir="/nonexistent").fix.split(";")[0]
    'download it first: huggingface-cli download Qwen/Qwen2.5-7B (or set MODEL_PATH to a local model folder)'
    >>> check_model("hdfs://models/qwen") is None  # verl copies remote paths itself
    True
    """
    if not path:
        return Problem("MODEL_PATH is empty", "set MODEL_PATH to a local model folder or a Hugging Face id")
    if "://" in path:
        return None
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            return Problem(
                f"MODEL_PATH={path} has no config.json: it is not a Hugging Face model folder",
                "point MODEL_PATH at the folder that holds config.json and the weights",
            )
        if not _has_weights(local):
            return Problem(
                f"MODEL_PATH={path} has config.json but no weights (*.safetensors, *.bin): an incomplete download?",
                "download the model again, e.g. huggingface-cli download <id> --local-dir " + path,
            )
        return None
    if local.exists():
        return Problem(f"MODEL_PATH={path} is a file, not a model folder", "point MODEL_PATH at the model's folder")
    if _HUB_ID.match(path):
        if cached_snapshot(path, cache_dir) is not None:
            return None
        cache = Path(cache_dir) if cache_dir else hub_cache_dir()
        return Problem(
            f"MODEL_PATH={path} is neither a local folder nor a model in the Hugging Face cache ({cache})",
            f"download it first: huggingface-cli download {path} (or set MODEL_PATH to a local model folder); "
            "verl's workers would otherwise each download it, on every node",
        )
    return Problem(
        f"MODEL_PATH={path} does not exist",
        "set MODEL_PATH to a local model folder, or to a Hugging Face id (e.g. Qwen/Qwen2.5-7B) downloaded with "
        "huggingface-cli download",
    )


# ------------------------------------------------------------------------------------------------ packages
def check_module(name: str, python: str = sys.executable) -> Problem | None:
    """``None`` if module ``name`` can be imported (found, not imported).

    >>> check_module("json") is None
    True
    >>> check_module("vllm_not_a_module").what.split(" (")[0]
    'vllm_not_a_module is not installed in this Python'
    """
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    why = " (verl's GPU rollout engine, from the `gpu` extra)" if INSTALL.get(name) == GPU_EXTRA else ""
    return Problem(f"{name} is not installed in this Python ({python}){why}", INSTALL.get(name, f"pip install {name}"))


# ------------------------------------------------------------------------------------------------ GPUs
def cpu_recipe_hint(root: Path | None = None) -> str:
    """The CPU recipe to suggest on a machine without a GPU: the first of :data:`CPU_RECIPES` that exists."""
    root = root or Path(__file__).resolve().parents[1]
    found = next((r for r in CPU_RECIPES if (root / r).is_file()), CPU_RECIPES[-1])
    return f"bash {found}"


def visible_gpus() -> tuple[int, str]:
    """``(number of CUDA devices torch sees, a description of the torch build)``; ``(-1, reason)`` without torch."""
    try:
        import torch
    except Exception as e:  # a broken torch install is a missing torch, for this check
        return -1, f"torch cannot be imported ({type(e).__name__}: {e})"
    build = f"torch {torch.__version__}" + ("" if torch.version.cuda else " (a CPU-only build)")
    try:
        return (int(torch.cuda.device_count()) if torch.cuda.is_available() else 0), build
    except Exception as e:  # driver problems surface here
        return 0, f"{build}; CUDA initialisation failed: {e}"


def check_gpus(need: int, found: int, build: str, cpu_hint: str) -> Problem | None:
    """``None`` if ``found`` (from :func:`visible_gpus`) covers ``need`` GPUs.

    >>> check_gpus(4, 4, "torch 2.8", "bash recipes/run_tiny_cpu.sh") is None
    True
    >>> print(check_gpus(4, 0, "torch 2.8 (a CPU-only build)", "bash recipes/run_tiny_cpu.sh").what)
    no GPU: torch 2.8 (a CPU-only build) sees no CUDA device (this recipe needs 4)
    >>> check_gpus(4, 2, "torch 2.8", "x").fix
    'set GPUS_PER_NODE=2 (and check the tensor/sequence-parallel sizes divide it), or run on a node with 4 GPUs'
    """
    if found >= need:
        return None
    if found < 0:
        return Problem(f"no GPU check possible: {build}", GPU_EXTRA)
    if found == 0:
        return Problem(
            f"no GPU: {build} sees no CUDA device (this recipe needs {need})",
            f"run it on a node with {need} GPUs; on a machine without a GPU use the CPU recipe: {cpu_hint}",
        )
    return Problem(
        f"{found} GPU(s) visible, GPUS_PER_NODE={need}",
        f"set GPUS_PER_NODE={found} (and check the tensor/sequence-parallel sizes divide it), "
        f"or run on a node with {need} GPUs",
    )


# ------------------------------------------------------------------------------------------------ CLI
def run_checks(model: str | None, gpus: int, needs: list[str]) -> list[Problem]:
    """Every problem: the GPUs first, then the model, then the modules."""
    problems = [check_gpus(gpus, *visible_gpus(), cpu_hint=cpu_recipe_hint())] if gpus > 0 else []
    if model is not None:
        problems.append(check_model(model))
    problems += [check_module(name) for name in needs]
    return [p for p in problems if p is not None]


def format_report(problems: list[Problem]) -> str:
    """The message printed for ``problems`` (one entry each, with its fix).

    >>> print(format_report([Problem("vllm is not installed", 'pip install -e ".[gpu]"')]))
    preflight: this machine cannot start the run:
      - vllm is not installed
        fix: pip install -e ".[gpu]"
    (SKIP_PREFLIGHT=1 skips these checks.)
    """
    lines = ["preflight: this machine cannot start the run:"]
    for p in problems:
        lines.append(f"  - {p.what}")
        fix = p.fix.splitlines()
        lines.append(f"    fix: {fix[0]}")
        lines += [f"         {more}" for more in fix[1:]]
    lines.append(f"({SKIP_ENV}=1 skips these checks.)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python3 -m verl_selfplay.gpu_preflight", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="MODEL_PATH: a local model folder or a Hugging Face id")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs this node must have (GPUS_PER_NODE); 0 skips")
    parser.add_argument("--need", action="append", default=[], help="a module that must be importable, e.g. vllm")
    args = parser.parse_args(argv)
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        print(f"preflight: skipped ({SKIP_ENV}={os.environ[SKIP_ENV]})")
        return 0
    try:
        problems = run_checks(args.model, args.gpus, args.need)
    except Exception as e:  # a bug here prints one line, never a stack trace; SKIP_PREFLIGHT=1 gets past it
        print(
            f"preflight: the checks themselves failed ({type(e).__name__}: {e}); {SKIP_ENV}=1 skips them",
            file=sys.stderr,
        )
        return 1
    if problems:
        print(format_report(problems), file=sys.stderr)
        return 1
    print(f"preflight: ok ({args.gpus} GPU(s), model {args.model}, {', '.join(args.need) or 'no extra modules'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
