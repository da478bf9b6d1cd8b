"""esn's own greedy decoding: a checkpoint whose generation_config.json samples, penalises
repetitions, blocks n-grams and suppresses an option digit still answers with the argmax of
the raw logits; the store records the decoding, refuses to mix with another, and replay
agrees with full generation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from esn.errors import RequestError, StoreMismatchError
from esn.pipeline.audio import load_audio
from esn.pipeline.decoding import DECODING, greedy_config
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.intervene.conditions import build_conditions
from esn.pipeline.intervene.engine import answer_items
from esn.pipeline.models import LoadOptions, ModelAdapter, build_tiny, load_adapter
from esn.pipeline.probe import Probe
from esn.pipeline.select import PoolOptions, SelectOptions, select_neurons
from esn.schemas import STATUS_DONE, ProbeInfo
from esn.stores import ActivationStore

MODEL = "tiny-qwen2_audio"
MAX_NEW_TOKENS = 20


def hostile_checkpoint(folder: Path) -> list[int]:
    """Save the tiny model with option digits made likely first tokens (a random model
    rarely starts with one) and a generation_config.json that samples, penalises and
    suppresses: returns the ids of the digits 1..3."""
    model, processor = build_tiny(MODEL)
    tokenizer = processor.tokenizer
    digits = [int(tokenizer.convert_tokens_to_ids(str(d))) for d in (1, 2, 3)]
    with torch.no_grad():
        model.get_output_embeddings().weight[digits] *= 6.0
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    path = folder / "generation_config.json"
    config = json.loads(path.read_text())
    config.update(do_sample=True, temperature=0.7, top_k=20, repetition_penalty=1.3,
                  no_repeat_ngram_size=2, suppress_tokens=[digits[0], digits[2] + 1])
    path.write_text(json.dumps(config))
    return digits


def argmax_answer(adapter: ModelAdapter, audio: np.ndarray, prompt: str) -> list[int]:
    """Ground truth: new tokens by argmax of the raw last-position logits, one full forward
    per token (no cache, no generate), until eos or MAX_NEW_TOKENS."""
    batch = adapter.build_batch([audio], [prompt])
    inputs = dict(batch.inputs)
    ids, mask = inputs.pop("input_ids"), inputs.pop("attention_mask")
    explicit = inputs.pop("position_ids", None) is not None
    eos = adapter.tokenizer.eos_token_id
    new: list[int] = []
    for _ in range(MAX_NEW_TOKENS):
        extra = {"position_ids": torch.arange(ids.shape[1])[None]} if explicit else {}
        with torch.no_grad():
            logits = adapter.model(input_ids=ids, attention_mask=mask, **extra,
                                   **inputs).logits[0, -1]
        token = int(logits.argmax())
        new.append(token)
        if token == eos:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return new


@pytest.fixture
def extracted(tmp_path: Path, manifest: Path) -> tuple[Path, Path, list[int]]:
    folder = tmp_path / "ckpt"
    digits = hostile_checkpoint(folder)
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=str(folder)),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                           utterance_chunk=4, checkpoint_layers=(0, 2)))
    return folder, out, digits


def test_answers_are_the_raw_argmax_despite_the_checkpoint_config(extracted) -> None:
    folder, out, digits = extracted
    store = ActivationStore.open(out)
    assert store.attributes.probe.decoding == dict(DECODING)
    adapter = load_adapter(LoadOptions(model_id=str(folder)))
    assert adapter.model.generation_config.repetition_penalty == 1.3  # the hostile one loaded
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    rows = [r for r, s in enumerate(store.status()) if s == STATUS_DONE]
    paths, options = store.metadata("path"), store.metadata("options")
    raw = store.metadata("raw_answer")
    firsts, inherited_differs = [], False
    for r in rows:
        audio = load_audio(str(paths[r]), adapter.sample_rate)
        prompt = probe.prompt(tuple(options[r]))
        tokens = argmax_answer(adapter, audio, prompt)
        firsts.append(tokens[0])
        assert raw[r] == adapter.decode(torch.tensor(tokens)), r
        # What esn did before: only the sampling switches overridden, the rest inherited.
        batch = adapter.build_batch([audio], [prompt])
        with torch.no_grad():
            old = adapter.model.generate(
                **batch.inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1,
                temperature=None, top_p=None, top_k=None,
                pad_token_id=adapter.tokenizer.pad_token_id)
        inherited_differs |= adapter.decode(old[0, batch.length:]) != raw[r]
    # The checkpoint's settings would have changed answers, and the suppressed digit is one
    # that the argmax picks: the test sees what the config would do.
    assert inherited_differs
    assert digits[0] in firsts, firsts
    # The model's own generation_config is back after each generate.
    assert adapter.model.generation_config.do_sample is True


def test_replay_equals_full_generation(extracted, tmp_path: Path) -> None:
    folder, out, _ = extracted
    sets, _ = select_neurons(str(out), SelectOptions(
        fraction=0.05, random_draws=1,
        pool=PoolOptions(holdout=0.4, correct_only=False, balance=False)))
    store = ActivationStore.open(out)
    adapter = load_adapter(LoadOptions(model_id=str(folder)))
    items = [i for i, s in enumerate(store.status()) if s == STATUS_DONE]
    grid = build_conditions(sets, mode="steer", strengths=(8.0,), methods=("mad",),
                            random_draws=1)
    auto = answer_items(adapter, store, items, grid, engine="auto", batch_size=5)
    full = answer_items(adapter, store, items, grid, engine="full", batch_size=3)
    np.testing.assert_array_equal(auto.parsed, full.parsed)
    np.testing.assert_array_equal(auto.raw[auto.engine == "full"],
                                  full.raw[auto.engine == "full"])
    replayed = int((auto.engine == "replay").sum())
    assert replayed > 0, auto.engine
    # The baseline under full generation is the extraction itself.
    assert full.raw[0].tolist() == store.metadata("raw_answer")[items].tolist()


def _rewrite_decoding(out: Path, decoding: dict | None) -> None:
    group = zarr.open_group(str(out), mode="r+")
    attrs = dict(group.attrs)
    probe = dict(attrs["probe"])
    if decoding is None:
        probe.pop("decoding")
    else:
        probe["decoding"] = decoding
    attrs["probe"] = probe
    group.attrs.put(attrs)


@pytest.mark.parametrize("decoding", [None, {**DECODING, "repetition_penalty": 1.05}])
def test_a_store_decoded_otherwise_is_not_resumed(extracted, manifest: Path,
                                                  decoding: dict | None) -> None:
    folder, out, _ = extracted
    _rewrite_decoding(out, decoding)
    with pytest.raises(StoreMismatchError, match="decoded under"):
        extract(ExtractRequest(model=LoadOptions(model_id=str(folder)),
                               corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                               utterance_chunk=4, checkpoint_layers=(0, 2)))
    info = ActivationStore.open(out).attributes.probe
    if decoding is None:  # an older store: readable, its probe usable
        assert info.decoding == {} and "decoding" not in info.to_dict()
        Probe.from_info(info, ("anger", "happy", "sad"))
    else:
        with pytest.raises(RequestError, match="repetition_penalty"):
            Probe.from_info(info, ("anger", "happy", "sad"))


def test_probe_info_decoding_round_trip() -> None:
    old = {"template": "{options}", "seed": 0, "option_order": "random", "max_new_tokens": 20}
    assert ProbeInfo.from_dict(old).to_dict() == old  # older stores keep their identity
    recorded = Probe(labels=("a", "b")).info
    assert ProbeInfo.from_dict(json.loads(json.dumps(recorded.to_dict()))) == recorded
    assert recorded.to_dict()["decoding"]["strategy"] == "greedy"
    from esn.errors import SchemaError
    with pytest.raises(SchemaError, match="strategy"):
        ProbeInfo(template="{options}", decoding={"do_sample": False})


def test_greedy_config_takes_eos_from_the_model() -> None:
    model, processor = build_tiny(MODEL)
    model.generation_config.eos_token_id = [7, 9]
    config = greedy_config(model, processor.tokenizer, 5)
    assert config.eos_token_id == [7, 9] and config.max_new_tokens == 5
    assert config.pad_token_id == processor.tokenizer.pad_token_id
    assert config.do_sample is False and config.repetition_penalty == 1.0
