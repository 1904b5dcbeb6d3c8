"""Group filters (PromptCoT zero-RL): keep prompt groups with accuracy in [low, high], drop over-long/repetitive ones.
Pure logic in ``acc``, ``length_repetition`` and ``pipeline``; the verl adapter is ``sampler.GroupFilterSampler``.
On: ``trainer.v1.sampler.custom_sampler.path=pkg://verl_selfplay.filters.sampler .name=GroupFilterSampler``.
"""
