"""esn: find and causally test emotion-sensitive neurons in large audio-language models."""

from __future__ import annotations

__version__ = "0.1.0"

from esn.stores import ActivationStore, open_store  # noqa: E402

__all__ = ["ActivationStore", "__version__", "open_store"]
