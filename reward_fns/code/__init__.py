"""Sandboxed execution of untrusted Python and the Absolute Zero Reasoner (AZR) code-task checks.

* :class:`Sandbox` / :class:`ExecResult` (:mod:`reward_fns.code.sandbox`): a pre-started, stdlib-only fork server
  that runs each job in a fresh, resource-limited child without network.
* :mod:`reward_fns.code.azr`: proposal validation and the deduction / abduction / induction checks, plus the
  ``code_exec`` / ``azr_*`` scorers behind :func:`reward_fns.compute_score`.
* :mod:`reward_fns.code.forbidden`: the one list of modules, calls and attributes AZR programs may not use.

Importing this package starts nothing: the fork server starts on the first job.
"""

from reward_fns.code.sandbox import ExecResult, Sandbox, configure_default_sandbox, default_sandbox, parse_call_args

__all__ = ["ExecResult", "Sandbox", "configure_default_sandbox", "default_sandbox", "parse_call_args"]
