"""Hidden-state checkpoints: bit-exact round trips, left padding, store integration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from esn.errors import SchemaError, StoreValidationError
from esn.stores import ActivationStore
from esn.stores.checkpoints import CheckpointChunk
from tests.conftest import make_batch, store_kwargs


def part(length: int, hidden: int = 5, dtype: torch.dtype = torch.float32,
         layers: int = 2, axes: int = 1) -> CheckpointChunk:
    return CheckpointChunk(
        hidden=torch.randn(layers, 1, length, hidden).to(dtype),
        attention_mask=torch.ones(1, length, dtype=torch.bool),
        positions=torch.arange(length, dtype=torch.int32).expand(axes, 1, length).clone(),
        valid=torch.rand(1, length) > 0.3,
        audio=torch.rand(1, length) > 0.5,
    )


def test_concat_left_pads_to_the_longest() -> None:
    parts = [part(3), part(5), part(0)]
    joined = CheckpointChunk.concat_left_padded(parts)
    assert joined.hidden.shape == (2, 3, 5, 5)
    assert joined.attention_mask.tolist() == [[False, False, True, True, True], [True] * 5,
                                              [False] * 5]
    assert torch.equal(joined.hidden[:, 0, 2:], parts[0].hidden[:, 0])
    assert torch.equal(joined.positions[:, 1], parts[1].positions[:, 0])
    assert not joined.hidden[:, 0, :2].any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_store_round_trip_is_bit_exact(tmp_path: Path, dtype: torch.dtype) -> None:
    name = str(dtype).removeprefix("torch.")
    store = ActivationStore.create(tmp_path / "s.zarr", **store_kwargs(6, 3, 8, 4),
                                   checkpoint_layers=(0, 2), hidden_size=5, hidden_dtype=name)
    rng = np.random.default_rng(0)
    chunks = [CheckpointChunk.concat_left_padded([part(n, dtype=dtype, axes=3)
                                                  for n in (4, 7, 1, 3)]),
              CheckpointChunk.concat_left_padded([part(n, dtype=dtype, axes=3) for n in (2, 5)])]
    store.write_batch(0, make_batch(rng, 4, 3, 8), chunks[0])
    store.write_batch(4, make_batch(rng, 2, 3, 8), chunks[1])
    for index, expected in enumerate(chunks):
        got = store.read_checkpoints(index)
        assert got.hidden.dtype == dtype
        for field in ("hidden", "attention_mask", "positions", "valid", "audio"):
            assert torch.equal(getattr(got, field), getattr(expected, field)), field
    assert store.validate(deep=True).ok


def test_checkpoints_are_required_and_checked(tmp_path: Path) -> None:
    store = ActivationStore.create(tmp_path / "s.zarr", **store_kwargs(6, 3, 8, 4),
                                   checkpoint_layers=(1,), hidden_size=5)
    batch = make_batch(np.random.default_rng(0), 4, 3, 8)
    with pytest.raises(ValueError, match="pass them"):
        store.write_batch(0, batch)
    wrong = CheckpointChunk.concat_left_padded([part(3, layers=2)] * 4)
    with pytest.raises(SchemaError, match="checkpoints have shape"):
        store.write_batch(0, batch, wrong)
    with pytest.raises(StoreValidationError, match="no hidden-state checkpoints"):
        store.read_checkpoints(0)
    plain = ActivationStore.create(tmp_path / "p.zarr", **store_kwargs(6, 3, 8, 4))
    with pytest.raises(ValueError, match="without checkpoint layers"):
        plain.write_batch(0, batch, CheckpointChunk.concat_left_padded([part(3, layers=1)] * 4))


def test_missing_checkpoints_of_a_finished_chunk_are_a_problem(tmp_path: Path) -> None:
    url = tmp_path / "s.zarr"
    store = ActivationStore.create(url, **store_kwargs(6, 3, 8, 4), checkpoint_layers=(1,),
                                   hidden_size=5)
    store.write_batch(0, make_batch(np.random.default_rng(0), 4, 3, 8),
                      CheckpointChunk.concat_left_padded([part(3, layers=1)] * 4))
    import shutil

    shutil.rmtree(url / "checkpoints" / "chunk_000000")
    assert any("checkpoints of finished chunk 0" in p for p in store.validate().problems)
