"""Real results folders for the report tests, from one chain on the planted tiny model.

Two stores of the same model (corpora ``a`` and ``b``: pure tones, sad is low), neuron sets
selected on each, and ``esn intervene`` runs that make every kind of figure: deactivation
at two set fractions, steering at two alphas, a smaller identification pool, and a transfer
from ``a`` to ``b``. The planted circuit gives sad's neurons a real effect.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene.run import InterveneRequest, intervene
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.stores.neuron_sets import write_neuron_sets
from tests.pipeline.intervene.planted import LABELS, TARGET, plant, write_corpus

MODEL = "tiny-qwen2_5_omni"
TOTAL = 4 * 64  # decoder layers x gate neurons of the tiny model
SMALL, BIG = 3 / TOTAL, 12 / TOTAL
N_BOOT = 200
CHECKS = [
    {"name": "all decoder MLP neurons zeroed", "value": 25.0, "ci": [10.0, 40.0],
     "unit": "% accuracy", "text": "UAR with every gate activation set to 0"},
    {"name": "planted neurons recovered", "value": 1.0, "ci": None, "unit": "fraction",
     "text": "share of the planted neurons in the mad sets"},
]


def _other_corpus(root: Path) -> Path:
    """Corpus ``b``: other clips (seed 1) under other ids (file names prefixed ``b_``)."""
    manifest = write_corpus(root, seed=1)
    rows = manifest.read_text().splitlines()
    for path in root.glob("*.wav"):
        path.rename(root / f"b_{path.name}")
    manifest.write_text("\n".join([rows[0], *[f"b_{r}" for r in rows[1:]]]) + "\n")
    return manifest


@torch.no_grad()
def _digit_head(adapter: ModelAdapter) -> None:
    """Make every first token an option digit, so that every answer comes from a fast
    replay: non-digit rows of the LM head become 0, option 1's and 2's rows a pair w, -w
    (one of them is positive); the target's row, which carries the planted vote, stays."""
    weight = adapter.lm_head.weight
    digits = [adapter.tokenizer.convert_tokens_to_ids(str(i + 1)) for i in range(len(LABELS))]
    kept = weight[digits].clone()
    weight.zero_()
    weight[digits] = kept
    assert LABELS.index(TARGET) not in (0, 1)
    weight[digits[1]] = -kept[0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Results folders by name: ``deact`` (sets at SMALL, with a checks.json), ``deact_big``
    (sets at BIG), ``steer`` (alpha 1 and 4), ``pool2`` (pool of 2 per emotion), ``a_to_b``
    (transfer) and ``b`` (the other store's own study)."""
    root = tmp_path_factory.mktemp("report_chain")
    manifests = {"a": write_corpus(root / "a"), "b": _other_corpus(root / "b")}
    adapter = load_adapter(LoadOptions(model_id=MODEL))
    plant(adapter, manifests["a"])
    _digit_head(adapter)
    for name, manifest in manifests.items():
        extract(ExtractRequest(model=LoadOptions(model_id=MODEL), corpus=f"manifest:{manifest}",
                               out=str(root / f"{name}.zarr"), option_order="fixed",
                               max_new_tokens=1, batch_size=12, utterance_chunk=12,
                               checkpoint_layers=(0,)), adapter=adapter)

    def sets(store: str, fraction: float, id_size: int | None = None) -> str:
        chosen, _ = select_neurons(str(root / f"{store}.zarr"), SelectOptions(
            methods=("mad", "conact", "rnd"), fraction=fraction, span="audio",
            random_draws=2, pool=PoolOptions(split="train", correct_only=False,
                                             balance=False, id_size=id_size)))
        path = root / f"sets_{store}_{fraction:.4f}_{id_size}.json"
        write_neuron_sets(path, chosen)
        return str(path)

    def run(name: str, store: str, sets_file: str, **kw: object) -> Path:
        intervene(InterveneRequest(store=str(root / f"{store}.zarr"), sets=sets_file,
                                   out=str(root / "results" / name), split="test", n_boot=20,
                                   batch_size=64, **kw), adapter=adapter)  # type: ignore[arg-type]
        return root / "results" / name

    small = sets("a", SMALL)
    folders = {
        "deact": run("deact", "a", small, mode="deactivate"),
        "deact_big": run("deact_big", "a", sets("a", BIG), mode="deactivate"),
        "steer": run("steer", "a", small, mode="steer", strengths=(1.0, 4.0)),
        "pool2": run("pool2", "a", sets("a", SMALL, id_size=2), mode="deactivate"),
        "a_to_b": run("a_to_b", "a", small, mode="deactivate", eval_store=str(root / "b.zarr")),
        "b": run("b", "b", sets("b", SMALL), mode="deactivate"),
    }
    (folders["deact"] / "checks.json").write_text(json.dumps(CHECKS))
    return folders
