"""Adapters that let other RL trainers use :func:`reward_fns.compute_score` unchanged.

- :mod:`reward_fns.integrations.trl`: reward functions for TRL's ``GRPOTrainer`` (``reward_func(...)``).

Importing an adapter never imports the trainer it serves: the adapters only speak its call signature.
"""
