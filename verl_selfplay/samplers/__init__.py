"""Deprecated package: its modules moved to ``verl_selfplay.filters``, ``verl_selfplay.ttrl`` and ``verl_selfplay.pcl``.

The old module paths (``pkg://verl_selfplay.samplers.group_filter`` and the rest) still import, as aliases of the
new modules with a FutureWarning, until verl-selfplay 0.3 (:data:`verl_selfplay._deprecated.MOVED`).
"""
