"""Hydra configs shipped with verl_selfplay (``pkg://verl_selfplay.config``)."""
