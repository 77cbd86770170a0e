"""Person re-identification: models, weights, the embedder, training and evaluation.

``from reid import load_embedder`` is the pipeline's entry point; names are imported lazily so that
``import reid.<light module>`` does not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reid.embedder import Embedder, load_embedder

__all__ = ["Embedder", "load_embedder"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from reid import embedder

        return getattr(embedder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
