"""Provenance recorded in every artifact esn writes: esn's and its libraries' versions."""

from __future__ import annotations

import importlib.metadata
import platform

__all__ = ["library_versions"]

_LIBRARIES = ("numpy", "zarr", "numcodecs", "xarray", "dask", "torch", "transformers")


def library_versions() -> dict[str, str]:
    """Versions of Python, esn and the libraries that shape esn's numbers ("" if absent)."""
    from esn import __version__

    versions = {"python": platform.python_version(), "esn": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = ""
    return versions
