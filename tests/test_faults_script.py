"""benchmarks/faults.py end to end at its smallest: one kill and resume, one damaged store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from benchmarks import faults
from esn.stores import ActivationStore
from tests.conftest import make_batch, store_kwargs


@pytest.mark.slow  # about 10 esn processes, 1-2 minutes on 2 cores
def test_one_kill_is_survived_and_a_damaged_store_gets_a_table(tmp_path: Path) -> None:
    ref = faults.build_reference(tmp_path, clips=12)
    rng = np.random.default_rng(0)
    run = faults.kill_run(ref, 1, "KILL", rng, tmp_path)
    assert run.resumed and run.lost == 0 and run.equal, run
    kills = faults.kill_table([run])
    assert kills.splitlines()[0].split()[:4] == ["run", "signal", "kill", "point"]
    assert kills.endswith("kills survived: 1 / 1")

    case = faults.damage_case(ref.store, "K chunk deleted", tmp_path, rng)
    assert list(case.outcomes) == ["validate", "validate --deep", "select", "stats"]
    assert {label: o.verdict for label, o in case.outcomes.items()} == dict.fromkeys(
        case.outcomes, "refused")  # every command reads the lost chunk, and says so
    table = faults.damage_table([case])
    assert "K chunk deleted" in table and "validate --deep" in table
    assert "refused: 4 / 4 (case, command) pairs" in table
    assert faults.passed([run], [case])


def test_the_comparison_sees_one_changed_utterance(tmp_path: Path) -> None:
    """compare_stores counts an utterance as lost when a single statistic of it differs."""
    stores = []
    for name in ("a.zarr", "b.zarr"):
        store = ActivationStore.create(tmp_path / name, **store_kwargs(8))
        batch = make_batch(np.random.default_rng(1), 8, 3, 8)
        store.write_batch(0, batch)
        stores.append(store)
    assert faults.compare_stores(tmp_path / "a.zarr", tmp_path / "b.zarr") == (0, True)
    k = stores[1].group["K"]
    assert isinstance(k, zarr.Array)
    k[5, 0, 2, 3] = int(np.asarray(k[5, 0, 2, 3])) + 1  # one count of utterance 5
    assert faults.compare_stores(tmp_path / "a.zarr", tmp_path / "b.zarr") == (1, False)
