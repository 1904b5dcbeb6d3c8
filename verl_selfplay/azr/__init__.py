"""Self-play on verl: one model proposes tasks and solves them; task domains ``code`` (Absolute Zero) and ``math`` (vote labels).
Pure logic in ``config``, ``buffers``, ``seeds``, ``prompts``, ``proposals``, ``advantage``, ``domains/``; verl adapters ``agent_loop``, ``trainer``.
On: ``trainer.v1.trainer_mode=azr algorithm.adv_estimator=task_relative_reinforce_plus_plus`` (+ ``+azr.*``; math: ``+azr.domain=math +selfplay_math.*``).
"""
