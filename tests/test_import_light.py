"""reward_fns is usable alone: importing and using it never imports torch, ray or verl."""

import json
import subprocess
import sys

HEAVY = ("torch", "ray", "verl", "transformers", "numpy")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_reward_fns_is_light():
    mods = _modules_after("import reward_fns, reward_fns.schemes, reward_fns.format")
    assert not [m for m in HEAVY if m in mods]


def test_scoring_every_source_stays_light():
    code = """
import reward_fns
from reward_fns import compute_score
compute_score("math", "<think>x</think><answer>\\\\frac{1}{2}</answer>", "0.5")
compute_score("kk_logic", "<answer>(1) Zoey is a knight</answer>", {"solution_text_format": "(1) Zoey is a knight"})
compute_score("vote", "\\\\boxed{3}", "3", {"majority_label": "3"})
import reward_fns.math, reward_fns.logic, reward_fns.vote
"""
    mods = _modules_after(code)
    assert not [m for m in HEAVY if m in mods], [m for m in HEAVY if m in mods]
