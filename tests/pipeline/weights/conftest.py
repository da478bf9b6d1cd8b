"""A converted-weights cache shared by the tests of this folder (conversion runs once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def weights_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("esn-cache")
    before = os.environ.get("ESN_CACHE")
    os.environ["ESN_CACHE"] = str(root)
    yield root
    if before is None:
        os.environ.pop("ESN_CACHE", None)
    else:
        os.environ["ESN_CACHE"] = before
