"""bfloat16 activation sums on disk: esn's numpy rounding is torch's cast, bit for bit."""

from __future__ import annotations

import numpy as np
import torch

from esn.schemas import StoreLayout
from esn.stores.arrays import sums_from_store, sums_to_store

LAYOUT = StoreLayout(n_utterances=1, n_layers=1, n_neurons=1, n_options=2,
                     sums_dtype="bfloat16")


def test_rounding_to_bfloat16_equals_torch_including_ties() -> None:
    rng = np.random.default_rng(0)
    values = (rng.standard_normal(200_000) * 10.0 ** rng.integers(-30, 30, 200_000))
    values = values.astype(np.float32)
    bits = values.view(np.uint32).copy()
    bits[:1000] = (bits[:1000] & np.uint32(0xFFFF0000)) | np.uint32(0x8000)  # exact ties
    bits[1000:2000] |= np.uint32(0xFFFF)  # the carry into the exponent
    values = np.concatenate([bits.view(np.float32), np.float32([0.0, -0.0, 1e-42, -3e38])])
    stored = sums_to_store(values, LAYOUT)
    assert stored.dtype == np.uint16
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy()
    np.testing.assert_array_equal(stored, expected.view(np.uint16))
    widened = sums_from_store(stored, LAYOUT)
    np.testing.assert_array_equal(widened, torch.from_numpy(values).to(torch.bfloat16)
                                  .to(torch.float32).numpy())
    np.testing.assert_array_equal(sums_to_store(widened, LAYOUT), stored)  # a fixed point
    finite = np.abs(values) > 1e-37
    relative = np.abs(widened[finite] - values[finite]) / np.abs(values[finite])
    assert relative.max() <= 2**-8


def test_float32_sums_pass_unchanged() -> None:
    layout = StoreLayout(n_utterances=1, n_layers=1, n_neurons=1, n_options=2)
    values = np.float32([1.1, -2.5e-7])
    assert sums_to_store(values, layout).tobytes() == values.tobytes()
    assert sums_from_store(values, layout) is values
    assert "sums_dtype" not in layout.to_dict()
    assert StoreLayout.from_dict(layout.to_dict()).sums_dtype == "float32"
