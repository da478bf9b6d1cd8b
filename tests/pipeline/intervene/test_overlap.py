"""One recording never on both sides: test items that share an audio file with the
identification pool are refused, in the same store (another id) and in a transfer store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from esn.errors import RequestError
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene.run import InterveneRequest, choose_test_items, intervene
from esn.pipeline.models import LoadOptions
from esn.pipeline.select.pool import pool_audio
from esn.schemas import Utterance
from esn.stores import ActivationStore
from tests.conftest import make_batch, store_kwargs


def test_a_transfer_store_with_the_pools_audio_is_refused(prepared, manifest: Path,
                                                          tmp_path: Path) -> None:
    store, sets = prepared
    # The same wav files under other ids: the id check alone lets every one through.
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    copies = manifest.parent / "copies.csv"
    with copies.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "id"])
        writer.writeheader()
        writer.writerows({**r, "id": f"copy-{Path(r['path']).stem}"} for r in rows)
    extract(ExtractRequest(model=LoadOptions(model_id="tiny-qwen2_5_omni"),
                           corpus=f"manifest:{copies}", out=str(tmp_path / "copies.zarr"),
                           batch_size=4, utterance_chunk=4))
    pool_ids = {u for ids in json.loads(sets.read_text())["pool"]["item_ids"].values()
                for u in ids}
    other = ActivationStore.open(tmp_path / "copies.zarr")
    assert not pool_ids & set(other.metadata("utterance").tolist())
    with pytest.raises(RequestError, match=r"test item\(s\) share an audio file with the "
                                           r"identification pool \(e\.g\. copy-"):
        intervene(InterveneRequest(store=str(store), sets=str(sets), mode="steer",
                                   eval_store=str(tmp_path / "copies.zarr"),
                                   out=str(tmp_path / "res")))
    ident = ActivationStore.open(store)
    paths = pool_audio(ident.metadata("utterance"), ident.metadata("path"), pool_ids)
    forced = choose_test_items(other, pool_ids, {}, split="auto", per_emotion=None, seed=0,
                               force_overlap=True, same_store=False, pool_paths=paths)
    assert forced  # force_overlap lets them through


def test_one_file_under_two_ids_in_one_store_is_refused(tmp_path: Path) -> None:
    # A store made before corpora were de-duplicated: utt0004 (test) is utt0000's (train) wav.
    kwargs = store_kwargs(8)
    utterances = [Utterance(id=f"utt{i:04d}", corpus="manifest",
                            path=f"/audio/utt{0 if i == 4 else i:04d}.wav",
                            emotion=kwargs["labels"][i % 4], raw_label=kwargs["labels"][i % 4],
                            split="train" if i < 4 else "test") for i in range(8)]
    kwargs["utterances"] = utterances
    store = ActivationStore.create(tmp_path / "s.zarr", **kwargs)
    store.write_batch(0, make_batch(np.random.default_rng(0), 8, 3, 8))
    pool_ids = {u.id for u in utterances if u.split == "train"}
    paths = pool_audio(store.metadata("utterance"), store.metadata("path"), pool_ids)
    with pytest.raises(RequestError, match=r"^1 test item\(s\) share an audio file with the "
                       r"identification pool \(e\.g\. utt0004: /audio/utt0000\.wav\); "
                       r"choose another split or force the overlap$"):
        choose_test_items(store, pool_ids, {}, split="auto", per_emotion=None, seed=0,
                          force_overlap=False, same_store=True, pool_paths=paths)
    forced = choose_test_items(store, pool_ids, {}, split="auto", per_emotion=None, seed=0,
                               force_overlap=True, same_store=True, pool_paths=paths)
    assert forced == [4, 5, 6, 7]  # one test item per emotion, utt0004 included
    other = frozenset({"/audio/elsewhere.wav"})  # no shared file: no refusal
    assert choose_test_items(store, pool_ids, {}, split="auto", per_emotion=None, seed=0,
                             force_overlap=False, same_store=True, pool_paths=other) == forced
