"""Neuron selectors, one module each, behind one registry (``SELECTORS``)."""

from esn.pipeline.select.selectors import conact, lap, lape, mad, rnd  # noqa: F401 (register)
from esn.pipeline.select.selectors.base import (
    SELECTORS,
    Ranked,
    SelectionContext,
    rank,
    register,
)

__all__ = ["SELECTORS", "Ranked", "SelectionContext", "rank", "register"]
