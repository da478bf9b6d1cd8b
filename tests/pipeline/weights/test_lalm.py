"""Whisper base + SmolLM2 assembled in Qwen2AudioForConditionalGeneration: the weights are
the pretrained ones, and ``esn extract --model FOLDER`` on it stores the statistics of an
independent recomputation (the gate computed by hand, the positions that count listed by
hand from the chat template)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import esn
from esn.pipeline.audio import load_audio
from esn.pipeline.extract import ExtractRequest, extract
from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.probe import Probe
from esn.pipeline.weights import WHISPER_BASE, read_ctranslate2
from esn.pipeline.weights.lalm import save_whisper_smollm2
from esn.pipeline.weights.smollm2 import load_smollm2
from esn.stores import ActivationStore

#: Positions that are neither audio nor text in the Qwen2-Audio chat template.
MARKERS = {"<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|audio_eos|>"}


@pytest.fixture(scope="module", params=["assembled", "esn-whisper-smollm2"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The assembled checkpoint directory, and the built-in id of the trained one (its
    LoRA is on attention only: the audio tower, MLPs and head are still the pretrained)."""
    if request.param != "assembled":
        return str(request.param)
    return str(save_whisper_smollm2(tmp_path_factory.mktemp("lalm") / "whisper-smollm2"))


def test_the_assembled_model_holds_the_pretrained_weights(checkpoint: str) -> None:
    adapter = load_adapter(LoadOptions(model_id=checkpoint))
    assert adapter.family == "qwen2_audio" and (adapter.n_layers, adapter.n_neurons) == (30, 1536)
    model = adapter.model
    whisper = read_ctranslate2(WHISPER_BASE.paths()).variables
    np.testing.assert_array_equal(model.model.audio_tower.conv1.weight.detach().numpy(),
                                  whisper["encoder/conv1/weight"].astype(np.float32))
    q = whisper["encoder/layer_4/self_attention/linear_0/weight"][:512].astype(np.float32)
    np.testing.assert_array_equal(
        model.model.audio_tower.layers[4].self_attn.q_proj.weight.detach().numpy(), q)
    smol, tokenizer = load_smollm2()
    for i in (0, 17, 29):
        assert torch.equal(model.model.language_model.layers[i].mlp.gate_proj.weight,
                           smol.model.layers[i].mlp.gate_proj.weight)
    n = smol.config.vocab_size
    assert torch.equal(model.lm_head.weight[:n], smol.lm_head.weight)
    assert len(adapter.tokenizer) == n + 3  # the three audio tokens


def test_extract_on_it_stores_an_independent_recomputation(checkpoint: str, manifest: Path,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    extract(ExtractRequest(model=LoadOptions(model_id=checkpoint),
                           corpus=f"manifest:{manifest}", out=str(out), batch_size=4,
                           utterance_chunk=4, sums="float32", max_new_tokens=4))
    store, ds = ActivationStore.open(out), esn.open_store(out)
    assert store.layout.n_layers == 30 and store.progress().done == 7
    adapter = load_adapter(LoadOptions(model_id=checkpoint))
    probe = Probe.from_info(store.attributes.probe, store.attributes.labels)
    for u in (0, 2, 5):
        item = ds.isel(utterance=u)
        options = tuple(item.options.values.tolist())
        batch = adapter.build_batch([load_audio(str(item.path.values))], [probe.prompt(options)])
        names = adapter.tokenizer.convert_ids_to_tokens(batch.inputs["input_ids"][0].tolist())
        audio = torch.tensor([t == "<|AUDIO|>" for t in names])
        text = ~audio & torch.tensor([t not in MARKERS for t in names])
        assert abs(int(audio.sum()) - 25 * float(item.heard)) <= 1  # 25 audio tokens a second
        masks = torch.stack([audio, text]).float()
        inputs: dict[int, torch.Tensor] = {}
        hooks = [layer.mlp.register_forward_pre_hook(
            lambda m, args, i=i, seen=inputs: seen.__setitem__(i, args[0][0].detach()))
            for i, layer in enumerate(adapter.layers)]
        try:
            with torch.no_grad():
                adapter.model(**batch.inputs)
        finally:
            for h in hooks:
                h.remove()
        np.testing.assert_array_equal(item.T.values, masks.sum(1).numpy())
        for layer in (0, 11, 29):
            gate = adapter.layers[layer].mlp.gate_proj.weight.detach()
            a = torch.nn.functional.silu(inputs[layer] @ gate.T)
            k = (masks @ (a > 0).float()).numpy()
            near_zero = (masks @ (a.abs() < 1e-6).float()).numpy()
            stored = item.K.values[:, layer].astype(np.int64)
            assert (np.abs(stored - k) <= near_zero).all(), layer
            np.testing.assert_allclose(item.act_sum.values[:, layer], (masks @ a).numpy(),
                                       rtol=1e-4, atol=1e-3)
