"""Deprecated path of a moved module (see :data:`verl_selfplay._deprecated.MOVED`); removed in 0.3."""

from verl_selfplay._deprecated import alias

alias(__name__, __spec__.name)
