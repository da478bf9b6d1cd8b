"""Hidden-state checkpoints beside the statistics: write and read one utterance chunk at a time.

Layout (declared in ``esn.schemas.store``): ``checkpoints/chunk_NNNNNN/{hidden,
attention_mask, positions, valid, audio}``, one Zarr chunk per array. bfloat16 states,
which numpy cannot hold, are stored as their raw 16-bit patterns (``uint16``) and come back
as bfloat16 tensors bit for bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import zarr
from zarr.codecs import BloscCodec

from esn.errors import StoreValidationError

__all__ = ["CheckpointChunk", "read_checkpoint_chunk", "write_checkpoint_chunk"]

GROUP = "checkpoints"
_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointChunk:
    """What replaying layers c..N-1 for one chunk's utterances needs (CPU tensors as read;
    ``to`` moves them).

    Attributes:
        hidden: ``(n_checkpoints, n, L, hidden)`` residual stream entering each layer.
        attention_mask: ``(n, L)`` bool, left padding False.
        positions: ``(axes, n, L)`` int32 rotary positions (1 axis, or 3 for mRoPE).
        valid: ``(n, L)`` bool positions the statistics counted.
        audio: ``(n, L)`` bool audio positions.
    """

    hidden: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    valid: torch.Tensor
    audio: torch.Tensor

    def to(self, device: torch.device | str) -> CheckpointChunk:
        """The same chunk on ``device`` (replay moves a chunk once, not once per batch)."""
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device)
                                            for f in dataclasses.fields(self)})

    @classmethod
    def concat_left_padded(cls, parts: list[CheckpointChunk]) -> CheckpointChunk:
        """Join batches of one chunk, left-padding each to the longest prompt among them."""
        length = max(1, *(p.attention_mask.shape[1] for p in parts))

        def pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            missing = length - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim=dim)

        return cls(
            hidden=torch.cat([pad(p.hidden, 2) for p in parts], dim=1),
            attention_mask=torch.cat([pad(p.attention_mask, 1) for p in parts], dim=0),
            positions=torch.cat([pad(p.positions, 2) for p in parts], dim=1),
            valid=torch.cat([pad(p.valid, 1) for p in parts], dim=0),
            audio=torch.cat([pad(p.audio, 1) for p in parts], dim=0),
        )


def _chunk_name(chunk: int) -> str:
    return f"{GROUP}/chunk_{chunk:06d}"


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def write_checkpoint_chunk(group: zarr.Group, chunk: int, data: CheckpointChunk) -> None:
    """Write (or overwrite) chunk ``chunk``'s checkpoints into the store group."""
    sub = group.require_group(_chunk_name(chunk))
    arrays = {
        "hidden": _to_numpy(data.hidden),
        "attention_mask": data.attention_mask.numpy().astype(bool),
        "positions": data.positions.numpy().astype(np.int32),
        "valid": data.valid.numpy().astype(bool),
        "audio": data.audio.numpy().astype(bool),
    }
    for name, values in arrays.items():
        arr = sub.create_array(
            name, shape=values.shape, dtype=values.dtype, chunks=values.shape,
            compressors=[_CODEC], overwrite=True, fill_value=0,
        )
        arr.with_config({"write_empty_chunks": True})[...] = values
    sub.attrs["hidden_dtype"] = str(data.hidden.dtype).removeprefix("torch.")


def read_checkpoint_chunk(group: zarr.Group, chunk: int) -> CheckpointChunk:
    """Read chunk ``chunk``'s checkpoints back as CPU tensors in the model's dtype."""
    name = _chunk_name(chunk)
    if name not in group:
        raise StoreValidationError(f"the store has no hidden-state checkpoints for chunk {chunk}")
    sub = group[name]
    assert isinstance(sub, zarr.Group)
    dtype = _TORCH_DTYPES[str(sub.attrs["hidden_dtype"])]

    def read(key: str) -> np.ndarray:
        node = sub[key]
        assert isinstance(node, zarr.Array)
        return np.asarray(node[...])

    hidden = torch.from_numpy(read("hidden"))
    hidden = hidden.view(torch.int16).view(dtype) if dtype == torch.bfloat16 else hidden
    return CheckpointChunk(
        hidden=hidden,
        attention_mask=torch.from_numpy(read("attention_mask")),
        positions=torch.from_numpy(read("positions")),
        valid=torch.from_numpy(read("valid")),
        audio=torch.from_numpy(read("audio")),
    )
