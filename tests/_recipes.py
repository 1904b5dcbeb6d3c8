"""Capture the exact verl command line a recipe script runs, and compose verl's real Hydra config from it.

The recipe scripts are the single source of their overrides: :func:`capture` runs ``bash recipes/X.sh`` with
a ``python3`` (and ``python``) first on ``PATH`` that records its argv instead of training, so the test sees
precisely the arguments a user's cluster would see. :func:`compose` then builds verl's trainer config from
those arguments exactly as ``verl.trainer.main_ppo`` would (same config folder and name, honouring
``--config-path`` / ``--config-name``); Hydra's struct mode rejects every unknown key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from _config import compose_verl

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
MAIN_MODULE = "verl.trainer.main_ppo"

_SHIM = textwrap.dedent(
    """\
    #!{python}
    # Records the command line instead of running it (tests/_recipes.py).
    import json, os, sys
    with open(os.environ["RECIPE_CAPTURE_FILE"], "a") as f:
        f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\\n")
    """
)


@dataclass
class RecipeCall:
    """One ``python3 -m verl.trainer.main_ppo`` call made by a recipe."""

    argv: list[str]
    cwd: str
    config_path: str | None = None
    config_name: str = "ppo_trainer"
    overrides: list[str] = field(default_factory=list)


def recipe_paths() -> list[Path]:
    """Every ``recipes/run_*.sh`` (recipes added by anyone are picked up automatically)."""
    return sorted(RECIPES.glob("run_*.sh"))


def _parse(argv: list[str], cwd: str) -> RecipeCall:
    call = RecipeCall(argv=argv, cwd=cwd)
    args = argv[2:]  # after "-m verl.trainer.main_ppo"
    i = 0
    while i < len(args):
        arg = args[i]
        for long, short, attr in (("--config-path", "-cp", "config_path"), ("--config-name", "-cn", "config_name")):
            if arg.startswith(long + "=") or arg.startswith(short + "="):
                setattr(call, attr, arg.split("=", 1)[1])
                break
            if arg in (long, short):
                i += 1
                setattr(call, attr, args[i])
                break
        else:
            if arg.startswith("-"):
                raise ValueError(f"unsupported Hydra flag {arg!r} in recipe command line")
            call.overrides.append(arg)
        i += 1
    return call


def capture(script: Path, *extra_args: str, env: dict[str, str] | None = None, tmp: Path) -> list[RecipeCall]:
    """Run ``script`` with the recording ``python3``; return its main_ppo calls (other python calls do nothing)."""
    shim_dir = tmp / "shim"
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        shim = shim_dir / name
        shim.write_text(_SHIM.format(python=sys.executable))
        shim.chmod(0o755)
    record = tmp / "calls.jsonl"
    record.unlink(missing_ok=True)
    run_env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "DATA_DIR", "NNODES", "GPUS_PER_NODE")}
    run_env["HOME"] = str(tmp)  # what a recipe creates under $HOME (run folders) stays in the test's folder
    run_env.update(env or {})
    run_env["PATH"] = f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    run_env["RECIPE_CAPTURE_FILE"] = str(record)
    proc = subprocess.run(
        ["bash", str(script), *extra_args], cwd=REPO, env=run_env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return [_parse(c["argv"], c["cwd"]) for c in calls if c["argv"][:2] == ["-m", MAIN_MODULE]]


def compose(call: RecipeCall):
    """verl's composed trainer config for ``call`` (raises on any unknown key or bad override)."""
    return compose_verl(call.overrides, config_name=call.config_name, config_path=call.config_path)


def recorded_argvs(tmp: Path) -> list[list[str]]:
    """The argv of every ``python3`` call of the last :func:`capture` into ``tmp``, in order (not only main_ppo's:
    e.g. a GPU recipe's ``-m verl_selfplay.gpu_preflight`` and data preparation calls)."""
    record = tmp / "calls.jsonl"
    return [json.loads(line)["argv"] for line in record.read_text().splitlines()] if record.exists() else []
