"""Reading a CTranslate2 ``model.bin`` (the format of the Whisper weights esn installs).

Layout, little-endian: u32 format version; the model spec name (u16 byte length, bytes,
NUL-padded); u32 revision; u32 number of variables; per variable its name (same string
form), u8 rank, rank x u32 dims, u8 dtype code, u32 byte count and the raw row-major data;
then u32 number of aliases and (alias, target) name pairs. A file split into parts is the
concatenation of their bytes.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from esn.errors import SchemaError

__all__ = ["CTranslate2Model", "read_ctranslate2"]

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclasses.dataclass(frozen=True)
class CTranslate2Model:
    """The variables of a CTranslate2 model, by name (aliases resolved), as numpy arrays."""

    spec: str
    version: int
    revision: int
    variables: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.offset, self.where = data, 0, where

    def take(self, n: int) -> bytes:
        if self.offset + n > len(self.data):
            raise SchemaError(f"{self.where}: ends early at byte {self.offset} (needs {n} more)"
                              " - a truncated or incomplete CTranslate2 model")
        out = self.data[self.offset:self.offset + n]
        self.offset += n
        return out

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def string(self) -> str:
        (length,) = struct.unpack("<H", self.take(2))
        return self.take(length).rstrip(b"\0").decode("utf-8")


def read_ctranslate2(parts: Sequence[str | Path]) -> CTranslate2Model:
    """The model in ``parts`` (one ``model.bin``, or the files whose bytes in order make it)."""
    paths = [Path(p) for p in parts]
    where = " + ".join(str(p) for p in paths)
    data = b"".join(p.read_bytes() for p in paths)
    reader = _Reader(data, where)
    version = reader.u32()
    spec = reader.string()
    revision = reader.u32()
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.u32()):
        name = reader.string()
        dims = [reader.u32() for _ in range(reader.u8())]
        code = reader.u8()
        if code not in _DTYPES:
            raise SchemaError(f"{where}: variable {name!r} has unknown dtype code {code}")
        nbytes = reader.u32()
        dtype = np.dtype(_DTYPES[code])
        if nbytes != int(np.prod(dims, dtype=np.int64)) * dtype.itemsize:
            raise SchemaError(f"{where}: variable {name!r} holds {nbytes} bytes, not "
                              f"{dims} x {dtype}")
        start = reader.offset
        reader.take(nbytes)
        variables[name] = np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize,
                                        offset=start).reshape(dims)
    if reader.offset < len(data):
        for _ in range(reader.u32()):
            alias, target = reader.string(), reader.string()
            if target in variables:
                variables[alias] = variables[target]
    return CTranslate2Model(spec=spec, version=version, revision=revision, variables=variables)
