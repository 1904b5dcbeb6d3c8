"""Parts shared by several algorithms' verl adapters; no override of its own turns them on.
``trajectories``: verl's TransferQueue trajectory layout; ``metrics``: scalar-metric helpers;
``sync_trainer``: the base of our sync-style trainer modes (``trainer.v1.trainer_mode=pcl``, later ``azr``).
"""
