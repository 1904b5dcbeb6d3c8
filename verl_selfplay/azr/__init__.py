"""Absolute Zero Reasoner self-play: one model proposes code tasks (deduction, abduction, induction) and solves them.
Pure logic in ``config``, ``buffers``, ``seeds``, ``prompts``, ``proposals``, ``advantage``; verl adapters ``agent_loop``, ``trainer``.
On: ``trainer.v1.trainer_mode=azr algorithm.adv_estimator=task_relative_reinforce_plus_plus`` (+ ``+azr.*``).
"""
