"""Extraction against ground truth, batch invariance, checkpoints, resume and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import esn
from esn.errors import CorpusSpecError, EsnError, StoreMismatchError
from esn.pipeline.audio import load_audio
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter
from esn.pipeline.probe import Probe
from esn.schemas import STATUS_DONE, STATUS_FAILED
from esn.stores import ActivationStore

TINY = ["tiny-qwen2_5_omni", "tiny-audioflamingo3", "tiny-qwen2_audio", "tiny-voxtral",
        "tiny-kimi_audio"]
ROOT = Path(__file__).parents[3]


def request(manifest: Path, out: Path, model: str, **kw) -> ExtractRequest:
    defaults = dict(batch_size=4, utterance_chunk=4, sums="float32")
    return ExtractRequest(model=LoadOptions(model_id=model), corpus=f"manifest:{manifest}",
                          out=str(out), **{**defaults, **kw})


#: Written by hand from each family's chat format (not from the adapters' rule): the audio
#: placeholder token, and the markers that are neither audio nor text positions, in prompt
#: order, for one 0.3 s clip and a three-option prompt; the audio count follows from the
#: encoders (Whisper-style: 30 mel frames -> stride-2 conv -> 15 -> pool 2 -> 7; Voxtral pads
#: to one 30 s window at 12.5 Hz: 375).
HAND = {
    "tiny-qwen2_5_omni": ("<|AUDIO|>", 7, ["<|im_start|>", "<|im_end|>", "<|im_start|>",
                                            "<|audio_bos|>", "<|audio_eos|>", "<|im_end|>",
                                            "<|im_start|>"]),
    "tiny-qwen2_audio": ("<|AUDIO|>", 7, ["<|im_start|>", "<|im_end|>", "<|im_start|>",
                                           "<|audio_bos|>", "<|audio_eos|>", "<|im_end|>",
                                           "<|im_start|>"]),
    "tiny-audioflamingo3": ("<sound>", 7, ["<|im_start|>", "<|im_end|>", "<|im_start|>",
                                            "<|im_end|>", "<|im_start|>"]),
    "tiny-voxtral": ("[AUDIO]", 375, ["<s>", "[INST]", "[BEGIN_AUDIO]", "[/INST]"]),
    # Kimi-Audio's two streams (kimia_infer's prompt manager): the question, then the clip at
    # 12.5 Hz (0.3 s -> 4 speech tokens); the markers ride on the audio stream over blanks.
    "tiny-kimi_audio": ("<speech>", 4, ["<|im_kimia_user_msg_start|>", "<|im_media_begin|>",
                                        "<|im_media_end|>", "<|im_kimia_speech_ct_id|>",
                                        "<|im_msg_end|>", "<|im_kimia_assistant_msg_start|>"]),
}


def token_names(adapter: ModelAdapter, inputs: dict[str, torch.Tensor]) -> list[str]:
    """Names of item 0's positions; Kimi-Audio's: ``<speech>`` for a speech token, else the
    text stream's token, or the audio stream's where the text stream holds a blank."""
    tokenizer = getattr(adapter.processor, "tokenizer", adapter.processor)
    names = [str(tokenizer.convert_ids_to_tokens(int(t))) for t in inputs["input_ids"][0]]
    if "text_input_ids" not in inputs:
        return names
    offset = adapter.model.config.kimia_token_offset
    text = [str(tokenizer.convert_ids_to_tokens(int(t))) for t in inputs["text_input_ids"][0]]
    return ["<speech>" if int(a) >= offset else (n if t == "<|im_kimia_text_blank|>" else t)
            for a, n, t in zip(inputs["input_ids"][0], names, text, strict=True)]


def hand_masks(model: str, adapter: ModelAdapter, inputs: dict[str, torch.Tensor],
               attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio, text) position masks from the token names and the hand-written table."""
    placeholder, _, markers = HAND[model]
    names = token_names(adapter, inputs)
    real = attention_mask.bool()
    audio = real & torch.tensor([n == placeholder for n in names])
    text = real & ~audio & ~torch.tensor([n in set(markers) for n in names])
    return audio, text


@pytest.mark.parametrize("model", TINY)
def test_valid_positions_match_the_hand_written_list(model: str) -> None:
    from esn.pipeline.extract.statistics import span_masks

    adapter = load_adapter(LoadOptions(model_id=model))
    probe = Probe(labels=("anger", "happy", "sad"), option_order="fixed")
    clip = np.full(int(0.3 * adapter.sample_rate), 0.01, dtype=np.float32)
    batch = adapter.build_batch([clip], [probe.prompt(probe.labels)])
    names = token_names(adapter, batch.inputs)
    audio, text = (m.bool() for m in span_masks(batch)[0])
    placeholder, n_audio, markers = HAND[model]
    assert [n for n, a, t in zip(names, audio, text, strict=True) if not a and not t] == markers
    assert [n for n, a in zip(names, audio, strict=True) if a] == [placeholder] * n_audio
    assert "".join(n for n, t in zip(names, text, strict=True) if t).count("anger") == 1


@torch.no_grad()
def ground_truth(model: str, adapter: ModelAdapter, audio: np.ndarray, prompt: str):
    """K, T, sums and hidden states of one item, from a forward of that item alone, with the
    gate computed by hand from each layer's MLP input and weights."""
    batch = adapter.build_batch([audio], [prompt])
    mlp_inputs: dict[int, torch.Tensor] = {}
    handles = [
        layer.mlp.register_forward_pre_hook(
            lambda m, args, i=i: mlp_inputs.__setitem__(i, args[0].detach()))
        for i, layer in enumerate(adapter.layers)
    ]
    try:
        out = adapter.model(**batch.inputs, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    audio_mask, text_mask = hand_masks(model, adapter, batch.inputs,
                                       batch.inputs["attention_mask"][0])
    masks = torch.stack([audio_mask, text_mask])  # (2, L)
    k, sums, near_zero = [], [], []
    for i, layer in enumerate(adapter.layers):
        x = mlp_inputs[i][0]  # (L, H)
        a = torch.nn.functional.silu(x @ layer.mlp.gate_proj.weight.T)  # (L, N)
        k.append(((a > 0)[None] & masks[:, :, None]).sum(1))
        sums.append((a[None] * masks[:, :, None]).sum(1))
        near_zero.append(((a.abs() < 1e-6)[None] & masks[:, :, None]).sum(1))
    return {
        "K": torch.stack(k, 1).numpy(), "T": masks.sum(1).numpy(),
        "act_sum": torch.stack(sums, 1).numpy(), "near_zero": torch.stack(near_zero, 1).numpy(),
        "hidden": [h[0, batch.inputs["attention_mask"][0].bool()] for h in out.hidden_states],
    }


@pytest.mark.parametrize("model", TINY)
def test_statistics_equal_an_independent_recomputation(manifest: Path, tmp_path: Path,
                                                       model: str) -> None:
    report = extract(request(manifest, tmp_path / "s.zarr", model, checkpoint_layers=(0, 2)))
    assert report.progress.done == 7 and report.progress.failed == 1
    store = ActivationStore.open(tmp_path / "s.zarr")
    ds = esn.open_store(tmp_path / "s.zarr")
    adapter = load_adapter(LoadOptions(model_id=model))
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    total_near_zero = total_entries = 0
    for u in range(ds.sizes["utterance"]):
        item = ds.isel(utterance=u)
        if int(item.status) != STATUS_DONE:
            continue
        options = tuple(item.options.values.tolist())
        assert options == probe.options_for(str(item.utterance.values))
        truth = ground_truth(model, adapter, load_audio(str(item.path.values)),
                             probe.prompt(options))
        np.testing.assert_array_equal(item.T.values, truth["T"])
        diff = np.abs(item.K.values.astype(np.int64) - truth["K"])
        assert (diff <= truth["near_zero"]).all(), "K differs beyond rounding at zero"
        total_near_zero += int((diff > 0).sum())
        total_entries += diff.size
        np.testing.assert_allclose(item.act_sum.values, truth["act_sum"], rtol=1e-4, atol=1e-4)
        assert int(item.n_tokens) == int(truth["hidden"][0].shape[0])
        # Checkpoints: the residual stream entering layers 0 and 2, as the model's own.
        chunk, row = divmod(u, store.layout.utterance_chunk)
        saved = store.read_checkpoints(chunk)
        n = int(item.n_tokens)
        for j, layer in enumerate(store.layout.checkpoint_layers):
            torch.testing.assert_close(saved.hidden[j, row, -n:], truth["hidden"][layer],
                                       rtol=1e-5, atol=1e-5)
        assert saved.attention_mask[row].sum() == n
    print(f"{model}: {total_near_zero} of {total_entries} K entries off by rounding at zero")
    assert total_near_zero <= total_entries * 1e-3


@pytest.mark.parametrize("model", TINY)
def test_batch_composition_changes_nothing(manifest: Path, tmp_path: Path, model: str) -> None:
    extract(request(manifest, tmp_path / "b1.zarr", model, batch_size=1))
    extract(request(manifest, tmp_path / "b4.zarr", model, batch_size=4))
    one, four = esn.open_store(tmp_path / "b1.zarr"), esn.open_store(tmp_path / "b4.zarr")
    for name in ("raw_answer", "parsed_answer", "correct", "status", "n_tokens", "options"):
        assert one[name].values.tolist() == four[name].values.tolist(), name
    np.testing.assert_array_equal(one.T.values, four.T.values)
    k_diff = np.abs(one.K.values.astype(np.int64) - four.K.values.astype(np.int64))
    assert k_diff.max() <= 1 and (k_diff > 0).mean() < 1e-3
    np.testing.assert_allclose(one.act_sum.values, four.act_sum.values, rtol=1e-4, atol=1e-4)


def test_unreadable_audio_is_recorded_and_the_run_goes_on(manifest: Path, tmp_path: Path) -> None:
    extract(request(manifest, tmp_path / "s.zarr", TINY[0]))
    ds = esn.open_store(tmp_path / "s.zarr")
    failed = ds.where(ds.status == STATUS_FAILED, drop=True)
    assert [Path(p).name for p in failed.path.values] == ["broken.wav"]
    assert "unreadable" in str(failed.failure_reason.values[0])
    assert not ds.K.sel(utterance=failed.utterance.values).any()
    assert set(ds.attrs["labels"]) == {"anger", "happy", "sad"}


def test_bad_requests_fail_clearly_and_keep_finished_work(manifest: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    extract(request(manifest, out, TINY[0]))
    before = esn.open_store(out).K.values
    with pytest.raises(CorpusSpecError, match="surprise"):
        extract(request(manifest, out, TINY[0], emotions=("anger", "surprise")))
    with pytest.raises(EsnError, match="no-such-model"):
        extract(request(manifest, tmp_path / "x.zarr", "no-such-model/at-all"))
    with pytest.raises(StoreMismatchError, match="tiny-qwen2_audio"):
        extract(request(manifest, out, "tiny-qwen2_audio"))
    with pytest.raises(StoreMismatchError):
        extract(request(manifest, out, TINY[0], seed=1))
    np.testing.assert_array_equal(esn.open_store(out).K.values, before)
    # Items whose emotion is outside the asked label set are not probed at all.
    extract(request(manifest, tmp_path / "two.zarr", TINY[0], emotions=("anger", "sad")))
    two = esn.open_store(tmp_path / "two.zarr")
    assert two.attrs["labels"] == ["anger", "sad"]
    assert sorted(set(two.emotion.values)) == ["anger", "sad"] and two.sizes["utterance"] == 5


KILL = textwrap.dedent(
    """
    import os, signal, sys
    import zarr
    from click.testing import CliRunner
    from esn.cli import main
    original = zarr.Array.__setitem__
    def killing(self, selection, value):
        # Die inside the second chunk's write, after its counts K and before its status.
        if self.path.rsplit("/", 1)[-1] == "T" and getattr(selection, "start", None) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, selection, value)
    zarr.Array.__setitem__ = killing
    result = CliRunner().invoke(main, sys.argv[1:], catch_exceptions=False)
    print(result.output)
    """
)


def test_sigkill_then_rerun_equals_an_uninterrupted_run(manifest: Path, tmp_path: Path) -> None:
    args = ["extract", "--model", TINY[0], "--corpus", f"manifest:{manifest}",
            "--batch-size", "2", "--utterance-chunk", "4", "--checkpoint-layers", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed.zarr"
    proc = subprocess.run([sys.executable, "-c", KILL, *args, "--out", str(killed)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    store = ActivationStore.open(killed)
    assert store.validate(deep=True).ok
    assert store.pending_chunks() == [1]
    from click.testing import CliRunner

    from esn.cli import main

    resumed = CliRunner().invoke(main, [*args, "--out", str(killed)], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert "4 items" in resumed.output  # only the unfinished chunk was probed again
    whole = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "whole.zarr")],
                               catch_exceptions=False)
    assert whole.exit_code == 0, whole.output
    a, b = esn.open_store(killed), esn.open_store(tmp_path / "whole.zarr")
    for name in list(a.data_vars) + list(a.coords):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for chunk in range(2):
        ca = ActivationStore.open(killed).read_checkpoints(chunk)
        cb = ActivationStore.open(tmp_path / "whole.zarr").read_checkpoints(chunk)
        assert torch.equal(ca.hidden, cb.hidden)


def test_a_mismatched_store_is_refused_before_the_model_loads(manifest: Path, tmp_path: Path,
                                                              monkeypatch) -> None:
    out = tmp_path / "s.zarr"
    extract(request(manifest, out, TINY[0]))

    def no_loading(options):
        raise AssertionError("the model was loaded before the store was checked")

    monkeypatch.setattr("esn.pipeline.extract.run.load_adapter", no_loading)
    with pytest.raises(StoreMismatchError, match=r"probe.seed: store has 0, asked 3"):
        extract(request(manifest, out, TINY[0], seed=3))
    with pytest.raises(StoreMismatchError, match="model: store has 'tiny-qwen2_5_omni'"):
        extract(request(manifest, out, "tiny-voxtral"))
