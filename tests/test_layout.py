"""The package layout: imports point downward only (recipes -> verl_selfplay -> reward_fns), no import cycles,
and the module paths that moved in 0.2 still import, as the same module, with a FutureWarning."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from verl_selfplay._deprecated import MOVED

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reward_fns", "verl_selfplay")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Every import (top-level and inside functions) between our modules, module -> imported modules."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def _is_package_init(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").exists()


def test_no_import_cycles_between_our_modules():
    graph = import_graph()
    assert len(graph) > 40  # the walk really found our modules
    # a package's __init__ importing its own submodule, and that submodule importing the package, is how Python
    # packages work (the package is already in sys.modules); every other cycle is a layering error
    graph = {m: {t for t in ts if not (_is_package_init(t) and m.startswith(t + "."))} for m, ts in graph.items()}
    assert _cycles(graph) == []


def test_imports_point_downward_only():
    graph = import_graph()
    upward = sorted(
        (m, t) for m, ts in graph.items() for t in ts if m.startswith("reward_fns") and "verl_selfplay" in t
    )
    assert upward == [], "reward_fns must not import verl_selfplay"
    assert any(t.startswith("reward_fns") for m, ts in graph.items() if m.startswith("verl_selfplay") for t in ts)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_module_paths_still_import_with_a_warning(old):
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"new = importlib.import_module({MOVED[old]!r})\n"
        "assert old is new, (old, new)\n"
        "msgs = [str(x.message) for x in w if issubclass(x.category, FutureWarning)]\n"
        f"assert any({old!r} in m and {MOVED[old]!r} in m and 'deprecated' in m for m in msgs), msgs\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_old_cli_path_runs_the_new_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "verl_selfplay.data.vote_label", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "verl_selfplay.data.pseudo_label" in proc.stdout
    assert "deprecated" in proc.stderr


def test_old_sampler_path_is_the_class_verl_loads():
    from verl.utils.import_utils import load_extern_object

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = load_extern_object("pkg://verl_selfplay.samplers.group_filter", "GroupFilterSampler")
    assert old is importlib.import_module("verl_selfplay.filters.sampler").GroupFilterSampler


def test_every_algorithm_folder_says_what_it_is_and_how_to_turn_it_on():
    for folder in ("filters", "ttrl", "pcl", "azr", "cpu", "data", "common"):
        doc = importlib.import_module(f"verl_selfplay.{folder}").__doc__ or ""
        head = doc.strip().splitlines()[:3]
        assert len(head) == 3 and all(line.strip() for line in head), (folder, head)


@pytest.mark.parametrize(
    "module",
    [
        "verl_selfplay.common.metrics",
        "verl_selfplay.common.trajectories",
        "verl_selfplay.filters.pipeline",
        "verl_selfplay.ttrl.relabel",
        "verl_selfplay.azr.buffers",
        "verl_selfplay.azr.config",
        "verl_selfplay.azr.prompts",
        "verl_selfplay.azr.proposals",
    ],
)
def test_doctests_of_the_pure_modules(module):
    import doctest

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0, result
