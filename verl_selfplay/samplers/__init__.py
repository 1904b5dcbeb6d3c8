"""Prompt samplers for verl: curriculum selection (PCL) and group filters.

Group filters and majority-vote relabelling (select with
``trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.samplers.group_filter`` and
``trainer.v1.sampler.custom_sampler.name=GroupFilterSampler``):

- :mod:`~verl_selfplay.samplers.acc_filter`: keep groups whose mean accuracy lies in [low, high];
- :mod:`~verl_selfplay.samplers.length_repetition`: truncation / length and repeated n-gram filters;
- :mod:`~verl_selfplay.samplers.vote_relabel`: TTRL's majority-vote pseudo-labels and re-scoring;
- :mod:`~verl_selfplay.samplers.pipeline`: options, per-group verdicts, refill sizing, step metrics;
- :mod:`~verl_selfplay.samplers.group_filter`: the verl replay-buffer adapter (the only part that imports verl).

Importing this package imports none of them, so it stays cheap.
"""
