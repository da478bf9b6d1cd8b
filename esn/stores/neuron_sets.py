"""Reading and writing neuron-set files (JSON), atomically, on a path or fsspec URL."""

from __future__ import annotations

import json
import os
import uuid

import fsspec

from esn.errors import SchemaError, StoreNotFoundError
from esn.schemas.neuron_sets import NEURON_SETS_FORMAT, NeuronSets
from esn.stores.outputs import OutputKind, claim_output, has_json_marker

__all__ = ["NEURON_SETS_OUTPUT", "claim_sets_output", "read_neuron_sets", "write_neuron_sets"]

#: A neuron-set file is esn's when it is a JSON object with its ``format``; it is replaced
#: whole.
NEURON_SETS_OUTPUT = OutputKind(name="neuron-set file", folder=False,
                                recognise=has_json_marker("", "format", (NEURON_SETS_FORMAT,)))


def claim_sets_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Check, before any work, that a neuron-set file may be written at ``path``: a new
    path, or (with ``overwrite``) an earlier esn neuron-set file. Anything else there is
    refused (``OutputRefusedError``; ``StoreExistsError`` for esn's own without
    ``overwrite``)."""
    claim_output(path, NEURON_SETS_OUTPUT, overwrite=overwrite)


def write_neuron_sets(path: str | os.PathLike[str], sets: NeuronSets, *,
                      overwrite: bool = False) -> None:
    """Write ``sets`` as JSON: to a temporary name first, renamed into place when complete
    (``claim_sets_output`` says where that is allowed)."""
    url = os.fspath(path)
    claim_sets_output(url, overwrite=overwrite)
    fs, target = fsspec.core.url_to_fs(url)
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
