"""A tiny store with checkpoints and neuron sets selected from it, shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.stores.neuron_sets import write_neuron_sets

MODEL = "tiny-qwen2_5_omni"


@pytest.fixture
def prepared(manifest: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(store path, neuron-set file): checkpoints at layers 0 and 2; a held-out 40%."""
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{manifest}",
                           out=str(out), batch_size=4, utterance_chunk=4,
                           checkpoint_layers=(0, 2)))
    sets, _ = select_neurons(str(out), SelectOptions(
        fraction=0.05, random_draws=2,
        pool=PoolOptions(holdout=0.4, correct_only=False, balance=False)))
    write_neuron_sets(tmp_path / "sets.json", sets)
    return out, tmp_path / "sets.json"
