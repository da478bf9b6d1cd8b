"""Reading and writing neuron-set files (JSON), atomically, on a path or fsspec URL."""

from __future__ import annotations

import json
import os
import uuid

import fsspec

from esn.errors import SchemaError, StoreExistsError, StoreNotFoundError
from esn.schemas.neuron_sets import NeuronSets

__all__ = ["read_neuron_sets", "write_neuron_sets"]


def write_neuron_sets(path: str | os.PathLike[str], sets: NeuronSets, *,
                      overwrite: bool = False) -> None:
    """Write ``sets`` as JSON: to a temporary name first, renamed into place when complete."""
    url = os.fspath(path)
    fs, target = fsspec.core.url_to_fs(url)
    if fs.exists(target) and not overwrite:
        raise StoreExistsError(f"{url} exists; pass overwrite to replace it")
    parent = os.path.dirname(target)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{target}.{uuid.uuid4().hex}.partial"
    with fs.open(tmp, "w") as f:
        json.dump(sets.to_dict(), f, indent=1)
    fs.mv(tmp, target)


def read_neuron_sets(path: str | os.PathLike[str]) -> NeuronSets:
    """Read and validate a neuron-set file."""
    url = os.fspath(path)
    fs, target = fsspec.core.url_to_fs(url)
    if not fs.exists(target):
        raise StoreNotFoundError(f"no neuron-set file at {url}")
    try:
        with fs.open(target, "r") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{url}: not JSON ({exc})") from exc
    try:
        return NeuronSets.from_dict(data)
    except SchemaError as exc:
        raise SchemaError(f"{url}: {exc}") from exc
