"""The streaming system: ``from pipeline import Pipeline`` is the Python API (see :mod:`pipeline.api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.api import FrameResult, Pipeline

__all__ = ["FrameResult", "Pipeline"]


def __getattr__(name: str) -> Any:
    """Import the API on first use, so ``python -m pipeline.evaluate`` and friends stay light."""
    if name in __all__:
        from pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
