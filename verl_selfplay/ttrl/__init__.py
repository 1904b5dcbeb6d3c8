"""TTRL: majority-vote pseudo-labels for ``vote`` rows, re-scoring each rollout against its group's label.
Pure logic in ``relabel``; it runs inside the group-filter sampler (:mod:`verl_selfplay.filters.sampler`).
On: the group-filter sampler overrides plus ``+trainer.v1.sampler.sampler_kwargs.vote.enable=true`` (the default).
A ``vote`` row is never rewarded against a gold answer: without relabelling it gets the failure score; its
true answer, if any, is ``extra_info["eval_ground_truth"]``, read only for ``training/vote/label_agreement``
and ``training/vote/true_acc``.
"""
