"""Parts shared by several algorithms' verl adapters (not turned on by any override of their own).

``trajectories``: verl's TransferQueue trajectory layout (keys, reward fields) read and written in one place;
``sync_trainer``: the base of our sync-style v1 trainer modes (``pcl``; ``azr`` next), with extra checkpoint state;
``metrics``: small helpers for the scalar metrics we hand to verl's tracker.
"""
