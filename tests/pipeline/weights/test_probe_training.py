"""Training Whisper + SmolLM2 to the probe: the cached audio path builds the model's own
input embeddings, and a few LoRA steps move only what the variant trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from esn.pipeline.models import LoadOptions, load_adapter
from esn.pipeline.models.base import ChatTemplateEncoder
from esn.pipeline.probe import Probe
from esn.pipeline.synth import synthesize
from esn.pipeline.weights.lalm import assemble_whisper_smollm2
from esn.pipeline.weights.probe_training import (
    ProbeTrainSettings,
    apply_parts,
    encode_audio,
    merged_checkpoint,
    prompt_embeds,
    train_to_probe,
)

LABELS = ("anger", "happy", "neutral", "sad", "surprise")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    synthesize(root / "c", per_emotion_per_speaker=1, speakers=2, seed=3, test_every=2)
    return root / "c" / "manifest.csv"


def test_cached_audio_frames_give_the_models_own_input_embeddings() -> None:
    model, processor = assemble_whisper_smollm2()
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 24000)]
    probe = Probe(labels=LABELS)
    prompts = [probe.prompt(probe.options_for(f"u{i}")) for i in range(2)]
    enc = ChatTemplateEncoder(processor=processor, sample_rate=16000)(clips, prompts)
    seen: dict[str, torch.Tensor] = {}

    def keep(module, args, kwargs):  # noqa: ANN001, ANN202
        seen.setdefault("embeds", kwargs["inputs_embeds"].detach())

    hook = model.model.language_model.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**enc)
            ours = prompt_embeds(model, enc["input_ids"], encode_audio(model, enc))
    finally:
        hook.remove()
    torch.testing.assert_close(ours, seen["embeds"], rtol=1e-5, atol=1e-5)


def test_a_few_attention_lora_steps_leave_every_mlp_pretrained(corpus: Path,
                                                                tmp_path: Path) -> None:
    model, processor = assemble_whisper_smollm2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()
              if ".mlp." in n or "q_proj" in n or "multi_modal_projector" in n
              or "audio_tower.layers.0." in n}
    result = train_to_probe(model, processor, corpus, LABELS, ProbeTrainSettings(
        variant="attention", epochs=2, batch_size=2, limit=4, projector_lr=1e-2,
        lora_lr=1e-2, rank=4, alpha=8))
    assert result["steps"] == 4 and all(np.isfinite(r["loss"]) for r in result["log"])
    after = dict(model.named_parameters())
    moved = {n for n, p in before.items() if not torch.equal(p, after[n].detach())}
    assert any("multi_modal_projector" in n for n in moved)
    assert any("self_attn.q_proj" in n for n in moved)  # LoRA merged into the weights
    assert not any(".mlp." in n or "audio_tower" in n for n in moved)
    # The parts alone, put into a fresh assembly, give the trained model back.
    settings = ProbeTrainSettings(variant="attention", rank=4, alpha=8)
    again = apply_parts(assemble_whisper_smollm2()[0], result["parts"], settings)
    for name, p in again.named_parameters():
        torch.testing.assert_close(p, after[name], rtol=0, atol=1e-6, msg=name)
    folder = merged_checkpoint(model, processor, tmp_path / "trained")
    adapter = load_adapter(LoadOptions(model_id=str(folder)))
    assert torch.equal(adapter.model.model.multi_modal_projector.linear.weight,
                       model.model.multi_modal_projector.linear.weight)
    probe = Probe(labels=LABELS, max_new_tokens=2)
    clip = np.zeros(16000, dtype=np.float32)
    answer = adapter.generate(adapter.build_batch([clip], [probe.prompt(LABELS)]), 2)
    assert isinstance(answer[0], str)


def test_the_gate_penalty_is_the_mean_absolute_gate_activation_over_the_prompt() -> None:
    from esn.pipeline.weights.probe_training import _GateActivations

    model, _ = assemble_whisper_smollm2()
    lm = model.model.language_model
    ids = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])  # the last position is left out
    inputs: list[torch.Tensor] = []
    hooks = [layer.mlp.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
             for layer in lm.layers]
    gates = _GateActivations(lm)
    try:
        with torch.no_grad():
            lm(input_ids=ids)
            penalty = gates.l1(mask)
    finally:
        gates.remove()
        for h in hooks:
            h.remove()
    expected = 0.0
    for layer, x in zip(lm.layers, inputs, strict=True):
        act = torch.nn.functional.silu(layer.mlp.gate_proj(x))[:, :4].abs()
        expected += float(act[mask.bool()].mean())
    assert len(inputs) == 30
    assert float(penalty) == pytest.approx(expected, rel=1e-5)
    assert gates.outputs == []
