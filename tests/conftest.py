"""Shared fixtures: where the read-only ``../shared`` data lives, skipping cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("MCPA_SHARED", REPO_ROOT.parent / "shared"))


def shared_path(relative: str) -> Path:
    """Return ``../shared/<relative>`` or skip the calling test with a message naming the missing path."""
    path = SHARED_DIR / relative
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set MCPA_SHARED to the folder holding it)")
    return path


@pytest.fixture
def shared() -> type[shared_path]:
    return shared_path
