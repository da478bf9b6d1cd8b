"""Converted checkpoints, cached once under the user's cache folder.

``ESN_CACHE`` if set, else ``$XDG_CACHE_HOME/esn`` (``~/.cache/esn``). A conversion writes an
ordinary ``save_pretrained`` folder ``weights/NAME-DIGEST`` (DIGEST: the first 16 hex digits
of the sources' sha256) into a temporary sibling and renames it into place when complete,
so an interrupted conversion leaves nothing that looks finished.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_root", "cached_conversion"]


def cache_root() -> Path:
    if os.environ.get("ESN_CACHE"):
        return Path(os.environ["ESN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esn"


def cached_conversion(name: str, digest: str, convert: Callable[[Path], None]) -> Path:
    """The folder of ``name`` converted from sources with sha256 ``digest``; ``convert``
    writes it into the folder it is given when it is not there yet."""
    folder = cache_root() / "weights" / f"{name}-{digest[:16]}"
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        partial.mkdir()
        convert(partial)
        try:
            partial.rename(folder)
        except OSError:  # another process finished first
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
