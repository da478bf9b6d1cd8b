"""Batches encoded in worker processes (``esn extract --batch-workers``) are the batches
encoded in the extracting process: the same tensors, the same store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import esn
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.extract.encoding import EncoderPool, batch_workers
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe


@pytest.mark.parametrize("model", ["tiny-qwen2_5_omni", "tiny-voxtral"])
def test_a_worker_process_encodes_what_this_process_encodes(model: str) -> None:
    adapter = load_adapter(LoadOptions(model_id=model))
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (8000, 12800, 5600)]
    probe = Probe(labels=("anger", "happy", "sad"), option_order="random")
    prompts = [probe.prompt(probe.options_for(f"u{i}")) for i in range(3)]
    here = adapter.batch_encoder()(clips, prompts, "cpu")
    with EncoderPool(adapter.batch_encoder(), workers=1) as pool:
        there = pool.encode(clips, prompts)
    assert set(there) == set(here)
    for key, value in here.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(there[key], value), key
        else:
            assert there[key] == value, key
    built, rebuilt = adapter.build_batch(clips, prompts), adapter.probe_batch(there)
    assert built.n_tokens == rebuilt.n_tokens and torch.equal(built.valid, rebuilt.valid)


def test_extraction_with_encoder_processes_writes_the_same_store(manifest: Path,
                                                                 tmp_path: Path) -> None:
    adapter = load_adapter(LoadOptions(model_id="tiny-qwen2_5_omni"))
    assert batch_workers(adapter, None) == 0  # unless asked, the batch thread encodes
    assert batch_workers(adapter, 2) == 2
    stores = {}
    for workers in (0, 2):
        stores[workers] = tmp_path / f"w{workers}.zarr"
        extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_5_omni"),
                               corpus=f"manifest:{manifest}", out=str(stores[workers]),
                               batch_size=2, utterance_chunk=4, checkpoint_layers=(1,),
                               sums="float32", batch_workers=workers), adapter=adapter)
    a, b = esn.open_store(stores[0]), esn.open_store(stores[2])
    assert int((a.status.values == 2).sum()) == 1  # the broken clip failed in both
    for name in list(a.data_vars) + [c for c in a.coords if c != "utterance"]:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
