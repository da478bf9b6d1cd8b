"""The arrays of an activation store: codecs and chunks (measured), creation, access.

Codecs and chunking, chosen with ``benchmarks/store_codecs.py`` (one chunk of 32 utterances
x 2 spans x 18944 neurons, 4 layers, 2-core machine; ratio raw/stored, MB/s of raw data):

    =========================  ========= ============= ============ ==============
    codec                      K uint16  K write/read  act_sum f32  write/read
    =========================  ========= ============= ============ ==============
    none (baseline)            1.00      184 / 1259    1.00         458 / 2252
    zstd-3                     1.72      107 /  619    1.11         353 / 1010
    blosc zstd-3 bitshuffle    2.12      199 / 1034    1.20         259 / 1140
    blosc zstd-5 bitshuffle    2.14      169 /  971    1.22         201 / 1247
    blosc lz4-5 bitshuffle     2.09      272 / 1068    1.19         389 / 1160
    =========================  ========= ============= ============ ==============

blosc lz4 with bitshuffle is within 2% of the best ratio and the fastest writer, so every
statistic uses it. K as uint32 stores in the same bytes as uint16 (ratio 4.14 vs 2.09) but
decodes 1.5x more raw data, so counts are uint16 unless an utterance has > 65535 positions.
Chunks hold one layer of ``utterance_chunk`` utterances. ``benchmarks/store_chunks.py``
(512 utterances x 4 layers x 18944 neurons; write, then ``K.sum(span).groupby(emotion)``
on the threaded scheduler; baseline = chunk 16 in the same run):

    chunk     16     32     64    128    256
    write s   1.78   1.51   1.24   1.31   1.29
    reduce s  1.96   0.91   0.66   0.55   0.52   (2.96x faster than 16 at 64, 3.56x at 128)

The default of 64 reads within 20% of 128 while a writer of a 28-layer 7B model buffers
half as much (407 MB instead of 815 MB of statistics per chunk).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from esn.errors import StoreValidationError
from esn.schemas.store import (
    CORPUS_FIELDS,
    METADATA_VARIABLES,
    STATISTICS_VARIABLES,
    StoreLayout,
    VariableSpec,
)
from esn.schemas.utterance import Utterance
from esn.stores.integrity import COMMIT_LOG, CheckedStore, short_error

__all__ = ["ALL_VARIABLES", "COORDINATES", "STATISTICS_CODEC", "array", "create_arrays",
           "from_store_values", "sums_from_store", "sums_to_store", "to_store_values",
           "write_corpus_metadata"]

STATISTICS_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
COORDINATES = ("span", "layer", "neuron", "option")
ALL_VARIABLES: tuple[VariableSpec, ...] = STATISTICS_VARIABLES + METADATA_VARIABLES
FILL = {"str": "", "bool": False, "float32": float("nan")}


def create_arrays(group: zarr.Group, layout: StoreLayout, labels: Sequence[str]) -> None:
    u = layout.utterance_chunk
    for spec in ALL_VARIABLES:
        if not layout.holds(spec):
            continue  # act_sum of a layout that keeps no sums
        is_stat = spec in STATISTICS_VARIABLES and len(spec.dims) == 4
        chunks = layout.statistics_chunks if is_stat else (u, *layout.shape_of(spec)[1:])
        dtype = layout.dtype_of(spec)
        group.create_array(
            spec.name,
            shape=layout.shape_of(spec),
            chunks=chunks,
            dtype=str if dtype == "str" else dtype,
            fill_value=FILL.get(dtype, 0),
            dimension_names=list(spec.dims),
            compressors=[STATISTICS_CODEC] if spec in STATISTICS_VARIABLES else "auto",
            attributes={"description": spec.description,
                        **({"encoding": "bfloat16 bits"} if spec.dtype == "sums"
                           and layout.sums_dtype == "bfloat16" else {})},
            overwrite=True,  # fsspec's memory store keeps old arrays visible after mode "w"
        )
    group.create_array(
        COMMIT_LOG, shape=(layout.n_chunks,), chunks=(1,), dtype="int32", fill_value=0,
        dimension_names=["chunk"], overwrite=True, attributes={
            "description": "finished utterances of each utterance chunk when it was "
                           "committed (written after its status)"})
    coordinate_values = {
        "span": np.asarray(layout.spans),
        "layer": np.arange(layout.n_layers, dtype=np.int32),
        "neuron": np.arange(layout.n_neurons, dtype=np.int32),
        "option": np.arange(1, layout.n_options + 1, dtype=np.int32),
    }
    for name, values in coordinate_values.items():
        arr = group.create_array(
            name, shape=values.shape, dtype=str if values.dtype.kind == "U" else values.dtype,
            dimension_names=[name], fill_value="" if values.dtype.kind == "U" else 0,
            overwrite=True,
        )
        arr.with_config({"write_empty_chunks": True})[...] = values  # even all-fill
    array(group, "options").attrs["labels"] = list(labels)


def write_corpus_metadata(group: zarr.Group, utterances: Sequence[Utterance]) -> None:
    values = {
        "utterance": [u.id for u in utterances],
        "corpus": [u.corpus for u in utterances],
        "path": [u.path for u in utterances],
        "speaker": [u.speaker or "" for u in utterances],
        "emotion": [u.emotion for u in utterances],
        "split": [u.split or "" for u in utterances],
    }
    assert set(values) == set(CORPUS_FIELDS)
    for name, column in values.items():
        array(group, name)[...] = np.asarray(column, dtype=object)


def array(group: zarr.Group, name: str) -> zarr.Array:
    try:
        node = group[name]
    except KeyError as exc:
        raise StoreValidationError(f"{_url_of_group(group)}: array {name!r} is missing") from exc
    except (ValueError, TypeError) as exc:  # a zarr.json that is not valid metadata
        raise StoreValidationError(
            f"{_url_of_group(group)}/{name}/zarr.json cannot be read as Zarr array metadata "
            f"({short_error(exc)})") from exc
    if not isinstance(node, zarr.Array):
        raise StoreValidationError(f"{group.store_path}: {name!r} is a group, not an array")
    # Write every chunk, even one equal to the fill value (e.g. all-zero counts): a finished
    # chunk must exist on disk, so a missing file always means a lost write.
    return node.with_config({"write_empty_chunks": True})


def _url_of_group(group: zarr.Group) -> str:
    store = group.store
    return store.url if isinstance(store, CheckedStore) else str(group.store_path)


def to_store_values(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object) if values.dtype == object else values


def from_store_values(values: np.ndarray) -> np.ndarray:
    return values.astype(object) if values.dtype.kind in "TUO" else values



def sums_to_store(values: np.ndarray, layout: StoreLayout) -> np.ndarray:
    """float32 activation sums as ``layout.sums_dtype`` keeps them: bfloat16 as its uint16
    bits, rounded to nearest even (as torch's cast does). Bits already rounded on the
    device (uint16) pass through."""
    if layout.sums_dtype == "bfloat16" and values.dtype == np.uint16:
        return values
    values = np.ascontiguousarray(values, dtype=np.float32)
    if layout.sums_dtype != "bfloat16":
        return values
    bits = values.view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return ((bits + rounding) >> np.uint32(16)).astype(np.uint16)


def sums_from_store(values: np.ndarray, layout: StoreLayout) -> np.ndarray:
    """Stored activation sums as float32 (bfloat16 bits widened exactly)."""
    if layout.sums_dtype != "bfloat16":
        return values
    return (np.asarray(values).astype(np.uint32) << np.uint32(16)).view(np.float32)
