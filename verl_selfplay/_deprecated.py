"""Old module paths kept importable for one release (0.2.x), each an alias of its new module with a warning.

The ``pkg://`` paths in users' verl command lines are a public interface, so a moved module leaves a two-line
stub at its old path that calls :func:`alias`. The stub's module object is replaced by the new module in
``sys.modules``, so classes keep one identity (a trainer registered once, ``isinstance`` checks that hold).
"""

from __future__ import annotations

import importlib
import runpy
import sys
import warnings

REMOVED_IN = "0.3"

# old module path -> new module path; the stubs in verl_selfplay/samplers/ and verl_selfplay/data/ name these
MOVED: dict[str, str] = {
    "verl_selfplay.samplers.group_filter": "verl_selfplay.filters.sampler",
    "verl_selfplay.samplers.acc_filter": "verl_selfplay.filters.acc",
    "verl_selfplay.samplers.length_repetition": "verl_selfplay.filters.length_repetition",
    "verl_selfplay.samplers.pipeline": "verl_selfplay.filters.pipeline",
    "verl_selfplay.samplers.vote_relabel": "verl_selfplay.ttrl.relabel",
    "verl_selfplay.samplers.pcl": "verl_selfplay.pcl.selection",
    "verl_selfplay.samplers.pcl_trainer": "verl_selfplay.pcl.trainer",
    "verl_selfplay.samplers.value_model": "verl_selfplay.pcl.value_model",
    "verl_selfplay.data.vote_label": "verl_selfplay.data.pseudo_label",
}


def alias(module_name: str, spec_name: str) -> None:
    """Make the stub module ``spec_name`` (run as ``module_name``) stand for its new module, with a FutureWarning.

    Run as a script (``python -m old.path``), the stub runs the new module as ``__main__`` instead.
    """
    new = MOVED[spec_name]
    warnings.warn(
        f"{spec_name} moved to {new}; the old path is deprecated and will be removed in verl-selfplay {REMOVED_IN}",
        FutureWarning,
        stacklevel=3,
    )
    if module_name == "__main__":
        runpy.run_module(new, run_name="__main__", alter_sys=True)
        return
    sys.modules[spec_name] = importlib.import_module(new)
