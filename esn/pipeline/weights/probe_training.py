"""Training the Whisper + SmolLM2 model (``esn.pipeline.weights.lalm``) to answer the probe.

Trainable: the projector and LoRA adapters (``peft``) on SmolLM2's linear layers; variant
``attention`` puts LoRA on q/k/v/o only, so every MLP keeps its pretrained weights and any
emotion-specific neurons found later are pretrained neurons; variant ``all`` adds the MLP
projections (gate/up/down). Whisper's encoder, the embeddings, norms and head stay frozen.

Each training clip's encoder output (the audio tower's valid frames, as the model's own
forward computes them: ``encode_audio``) is computed once; a step builds the prompt with
the processor (the probe's question with the options in a fresh random order per item and
epoch), embeds it, puts the projected audio frames at the audio tokens (``prompt_embeds``,
checked equal to the model's own merge in the tests), appends the answer (the gold option's
digit, or the emotion's name and the digit, then ``<|im_end|>``) and takes the
cross-entropy on the answer's tokens only. AdamW,
linear warm-up then cosine decay, bf16 autocast on a GPU.

``merged_checkpoint`` folds the LoRA weights into the base (W + alpha/r B A) and writes an
ordinary checkpoint directory; ``TrainedParts`` (projector + LoRA matrices + the record) is
what would ship as package data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esn.errors import RequestError
from esn.pipeline.audio import load_audio
from esn.pipeline.corpora.spec import load_corpus
from esn.pipeline.models.base import ChatTemplateEncoder
from esn.pipeline.probe import Probe

__all__ = ["LORA_TARGETS", "ProbeTrainSettings", "apply_parts", "checkpoint_from_parts",
           "encode_audio", "merged_checkpoint", "prompt_embeds", "train_to_probe"]

LORA_TARGETS = {"attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
                "all": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                        "down_proj")}


ANSWERS = ("digit", "label-digit")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeTrainSettings:
    """What trains and how. Defaults: the shipped ``esn-whisper-smollm2``'s settings
    (attention-only LoRA, 30 epochs, LoRA lr 2e-3, ``label-digit`` answers)."""

    variant: str = "attention"
    epochs: int = 30
    batch_size: int = 16
    projector_lr: float = 1e-3
    lora_lr: float = 2e-3
    rank: int = 16
    alpha: int = 32
    warmup_fraction: float = 0.05
    #: Weight of an L1 penalty on the decoder's gate activations (mean |act_fn(gate_proj x)|
    #: over the prompt's positions and every neuron, summed over layers): 0 for the plain
    #: organisms; > 0 asks the decision to rest on few neurons (the "designed to localise"
    #: organism, reported as such).
    gate_l1: float = 0.0
    #: What the model learns to answer: ``digit`` (the gold option's number) or
    #: ``label-digit`` (the emotion's name, then its number: ``"sad, 4"``; the probe's parse
    #: takes the number, or the name when the answer stops before it).
    answer: str = "label-digit"
    seed: int = 0
    limit: int | None = None  # at most this many training clips (smoke tests)
    held_out_speakers: tuple[str, ...] = ()  # never trained on (the unseen-speaker test)

    def __post_init__(self) -> None:
        if self.variant not in LORA_TARGETS:
            raise RequestError(f"variant must be one of {sorted(LORA_TARGETS)}, "
                               f"got {self.variant!r}")
        if self.answer not in ANSWERS:
            raise RequestError(f"answer must be one of {list(ANSWERS)}, got {self.answer!r}")
        if self.gate_l1 < 0:
            raise RequestError(f"gate_l1 must be >= 0, got {self.gate_l1}")


def encode_audio(model: Any, encoded: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per clip, the audio tower's output at its valid frames (before the projector), as
    ``Qwen2AudioForConditionalGeneration`` computes it for ``encoded`` (processor output)."""
    from transformers.masking_utils import create_bidirectional_mask

    tower = model.model.audio_tower
    device = next(tower.parameters()).device
    features = encoded["input_features"].to(device, next(tower.parameters()).dtype)
    mask = encoded["feature_attention_mask"].to(device)
    lengths, out_lengths = tower._get_feat_extract_output_lengths(mask.sum(-1))
    frames = (features.shape[-1] - 2) // 2 + 1
    valid = torch.arange(frames, device=device)[None, :] < lengths[:, None]
    attention = create_bidirectional_mask(
        config=tower.config, inputs_embeds=torch.zeros(len(features), frames, 1, device=device,
                                                       dtype=features.dtype),
        attention_mask=valid.long())
    hidden = tower(features, attention_mask=attention).last_hidden_state
    return [hidden[i, :int(n)] for i, n in enumerate(out_lengths)]


def prompt_embeds(model: Any, input_ids: torch.Tensor,
                  audio: Sequence[torch.Tensor]) -> torch.Tensor:
    """Input embeddings of ``input_ids`` with the projected ``audio`` frames (one tensor per
    row, in order) at the audio tokens, as the model's own forward merges them."""
    embeds = model.get_input_embeddings()(input_ids)
    projected = model.model.multi_modal_projector(torch.cat(list(audio)).to(embeds.dtype))
    at_audio = (input_ids == model.config.audio_token_id).unsqueeze(-1)
    return embeds.masked_scatter(at_audio, projected.to(embeds.dtype))


@dataclasses.dataclass
class _Clip:
    id: str
    emotion: str
    audio: np.ndarray
    frames: torch.Tensor | None = None


def _clips(manifest: str | Path, split: str, limit: int | None,
           held_out: Sequence[str] = ()) -> list[_Clip]:
    listing = load_corpus(f"manifest:{manifest}")
    items = [u for u in listing.utterances
             if (u.split or "") == split and (u.speaker or "") not in held_out]
    if limit is not None:
        items = items[:limit]
    if not items:
        raise RequestError(f"{manifest}: no {split!r} clips to train on")
    return [_Clip(u.id, u.emotion, load_audio(u.path)) for u in items]


def answer_text(answer: str, label: str, digit: int) -> str:
    """The trained answer to an item whose gold option is number ``digit`` (``label``)."""
    return f"{digit}" if answer == "digit" else f"{label}, {digit}"


def _answer_ids(tokenizer: Any, text: str) -> list[int]:
    ids = list(tokenizer(f"{text}<|im_end|>", add_special_tokens=False)["input_ids"])
    if len(ids) < 2:
        raise RuntimeError(f"the answer {text!r} tokenizes to {ids}")
    return ids


def _answers(tokenizer: Any, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)`` of the answers, right-padded: the loss reads the mask's tokens."""
    rows = [_answer_ids(tokenizer, t) for t in texts]
    width = max(map(len, rows))
    pad = int(tokenizer.pad_token_id)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def _schedule(total: int, warmup: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def train_to_probe(model: Any, processor: Any, manifest: str | Path, labels: Sequence[str],
                   settings: ProbeTrainSettings = ProbeTrainSettings(), *,
                   device: str = "cpu", say: Any = lambda _: None) -> dict[str, Any]:
    """Train ``model`` (assembled, float32) in place on the ``train`` split of ``manifest``;
    returns the LoRA-wrapped language model's training log. The LoRA weights are merged
    into the model before returning, so ``model`` is the trained model."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    clips = _clips(manifest, "train", settings.limit, settings.held_out_speakers)
    tokenizer = processor.tokenizer
    # The prompts exactly as esn's probes build them (the Qwen2-Audio adapter's encoder).
    encode = ChatTemplateEncoder(processor=processor,
                                 sample_rate=processor.feature_extractor.sampling_rate)
    encoder_probe = Probe(labels=tuple(labels), option_order="fixed")
    started = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(clips), 16):
            part = clips[first:first + 16]
            enc = dict(processor(text=["<|audio_bos|><|AUDIO|><|audio_eos|>"] * len(part),
                                 audio=[c.audio for c in part], return_tensors="pt",
                                 sampling_rate=16000, padding=True))
            for clip, frames in zip(part, encode_audio(model, enc), strict=True):
                clip.frames = frames.float()
    cache_s = time.perf_counter() - started
    lm = get_peft_model(model.model.language_model, LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
        target_modules=list(LORA_TARGETS[settings.variant])))
    model.model.language_model = lm
    projector = model.model.multi_modal_projector
    for p in projector.parameters():
        p.requires_grad_(True)
    lora = [p for n, p in lm.named_parameters() if "lora_" in n]
    optimiser = torch.optim.AdamW([{"params": list(projector.parameters()),
                                    "lr": settings.projector_lr},
                                   {"params": lora, "lr": settings.lora_lr}])
    steps_per_epoch = -(-len(clips) // settings.batch_size)
    total = steps_per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, _schedule(total, max(1, int(settings.warmup_fraction * total))))
    on_gpu = device.startswith("cuda")
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu
                else contextlib.nullcontext())
    # Only the prompt's ids are used (the audio frames are cached); on a GPU the features
    # the processor computes anyway take its torch STFT instead of numpy's.
    feature_device = device if on_gpu else "cpu"
    gates = _GateActivations(lm) if settings.gate_l1 > 0 else None
    log: list[dict[str, float]] = []
    model.train()
    for epoch in range(settings.epochs):
        order = rng.permutation(len(clips))
        losses = []
        for batch in _chunks(order, settings.batch_size):
            part = [clips[i] for i in batch]
            options = [tuple(rng.permutation(list(labels))) for _ in part]
            prompts = [encoder_probe.prompt(o) for o in options]
            enc = encode([c.audio for c in part], prompts, feature_device=feature_device)
            answers, answered = _answers(tokenizer, [
                answer_text(settings.answer, c.emotion, o.index(c.emotion) + 1)
                for o, c in zip(options, part, strict=True)])
            width = answers.shape[1]
            ids = torch.cat([enc["input_ids"], answers], dim=1).to(device)
            attention = torch.cat([enc["attention_mask"], answered], 1).to(device)
            positions = (attention.cumsum(-1) - 1).clamp(min=0)  # as esn's probes give them
            with autocast:
                embeds = prompt_embeds(model, ids, [_frames(c).to(device) for c in part])
                hidden = lm(inputs_embeds=embeds, attention_mask=attention,
                            position_ids=positions).last_hidden_state
                # The answer's tokens, each predicted from the position before it.
                logits = model.lm_head(hidden[:, -width - 1:-1]).float()
            target = ids[:, -width:].masked_fill(answered.to(device) == 0, -100)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     target.reshape(-1), ignore_index=-100)
            if gates is not None:
                loss = loss + settings.gate_l1 * gates.l1(attention[:, :-width])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        log.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
        say(f"epoch {epoch + 1}/{settings.epochs}: loss {log[-1]['loss']:.3f}")
    model.eval()
    if gates is not None:
        gates.remove()
    from peft import get_peft_model_state_dict

    parts = {f"language_model.{k}": v.detach().float().cpu().clone()
             for k, v in get_peft_model_state_dict(
                 lm, save_embedding_layers=False).items()}  # embeddings: the base's
    parts.update({f"multi_modal_projector.{k}": v.detach().float().cpu().clone()
                  for k, v in projector.state_dict().items()})
    model.model.language_model = lm.merge_and_unload()
    return {"log": log, "steps": total, "train_clips": len(clips), "cache_s": cache_s,
            "train_s": time.perf_counter() - started - cache_s, "parts": parts}


def apply_parts(model: Any, parts: dict[str, torch.Tensor], settings: ProbeTrainSettings) -> Any:
    """The assembled ``model`` with trained ``parts`` (``train_to_probe``'s) put in: the
    projector loaded and the LoRA weights merged by peft, as training merged them."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    model.model.multi_modal_projector.load_state_dict(
        {k.removeprefix("multi_modal_projector."): v for k, v in parts.items()
         if k.startswith("multi_modal_projector.")})
    lm = get_peft_model(model.model.language_model, LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
        target_modules=list(LORA_TARGETS[settings.variant])))
    result = set_peft_model_state_dict(lm, {k.removeprefix("language_model."): v
                                            for k, v in parts.items()
                                            if k.startswith("language_model.")})
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise RuntimeError(f"trained parts hold unknown LoRA keys {unexpected[:3]}")
    model.model.language_model = lm.merge_and_unload()
    return model.eval()


class _GateActivations:
    """Forward hooks on every decoder layer's ``mlp.act_fn`` that keep its output (the gate
    activations esn's neurons are) for one step's sparsity penalty."""

    def __init__(self, lm: Any) -> None:
        self.outputs: list[torch.Tensor] = []
        self.handles = [module.act_fn.register_forward_hook(self._keep)
                        for name, module in lm.named_modules() if name.endswith(".mlp")]
        if not self.handles:
            raise RuntimeError("no decoder MLPs found for the gate penalty")

    def _keep(self, _module: Any, _inputs: Any, output: torch.Tensor) -> None:
        self.outputs.append(output)

    def l1(self, mask: torch.Tensor) -> torch.Tensor:
        """Per layer the mean |activation| over the first ``mask.shape[1]`` positions where
        ``mask`` is 1, and over the neurons; summed over layers. Clears what it kept."""
        weight = mask.float()[..., None]
        count = weight.sum() * self.outputs[0].shape[-1]
        total = torch.stack([(a[:, :mask.shape[1]].float().abs() * weight).sum() / count
                             for a in self.outputs]).sum()
        self.outputs.clear()
        return total

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _frames(clip: _Clip) -> torch.Tensor:
    assert clip.frames is not None, "audio frames are cached before training"
    return clip.frames


def _chunks(order: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for first in range(0, len(order), size):
        yield order[first:first + size]


def merged_checkpoint(model: Any, processor: Any, folder: str | Path) -> Path:
    """Write the (trained, merged) model and its processor as a checkpoint directory."""
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def checkpoint_from_parts(parts: dict[str, torch.Tensor], settings: ProbeTrainSettings,
                          folder: str | Path) -> Path:
    """The checkpoint directory of trained ``parts`` (any float dtype) on a fresh assembly
    of the base weights: what a training run evaluates and what the built-in id loads."""
    from esn.pipeline.weights.lalm import assemble_whisper_smollm2

    model, processor = assemble_whisper_smollm2(seed=settings.seed)
    model = apply_parts(model, {k: v.float() for k, v in parts.items()}, settings)
    return merged_checkpoint(model, processor, folder)
