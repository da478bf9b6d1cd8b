"""``train_organism``: train the organism on a synth corpus, in two stages, on the CPU.

1. The audio encoder (and a throw-away linear head) learns frame-level acoustic regression
   (per audio token: log RMS, log F0, voicing, spectral centroid): another task than emotion.
2. The encoder is frozen; so are the token embeddings, attention, norms and LM head at their
   seeded random values. Only the decoder MLPs learn to answer the probe (fixed option
   order; the answer is the first generated token, a digit). Nothing else can move the
   answer, so the decision must run through the MLP neurons: zeroing every gate activation
   should bring accuracy to chance (checked, and recorded as ``mlp_zeroed_accuracy``).

Both stages run on precomputed probe inputs (``data.prepare``) in float32, deterministic
given the seed. The saved weights are float16; the recorded metrics are measured on those
weights through the real probe path (``adapter.generate`` and ``Probe.parse``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import esn
from esn.errors import RequestError, StoreExistsError
from esn.pipeline.audio import load_audio
from esn.pipeline.corpora.spec import load_corpus
from esn.pipeline.models.base import ModelAdapter
from esn.pipeline.models.qwen2_5_omni import QwenOmniAdapter
from esn.pipeline.organism.data import N_TARGETS, PROSODY_COLUMNS, ClipData, prepare
from esn.pipeline.organism.model import (
    ORGANISM_AUDIO,
    ORGANISM_ID,
    ORGANISM_TEXT,
    RECORD_FILE,
    WEIGHTS_FILE,
    build_organism,
    load_organism,
    organism_record,
    organism_revision,
)
from esn.pipeline.probe import Probe
from esn.pipeline.synth.corpus import SYNTH_OUTPUT, read_settings, synthesize
from esn.schemas.store import ModelInfo
from esn.stores.outputs import OutputKind, claim_output, has_json_marker, move_into_place

__all__ = ["ORGANISM_OUTPUT", "TRAINING_OUTPUT", "TrainSettings", "evaluate", "mlp_zeroed",
           "retrain_shipped", "train_organism"]

LABELS: tuple[str, ...] = ("anger", "happy", "neutral", "sad", "surprise")
ORGANISM_FORMAT = "esn-organism"
CORPUS_DIR, ORGANISM_DIR = "corpus", "organism"
#: An organism folder is esn's when its ``organism.json`` has the organism format;
#: overwrite replaces the weights and the record, nothing else.
ORGANISM_OUTPUT = OutputKind(
    name="organism", folder=True,
    recognise=has_json_marker(RECORD_FILE, "format", (ORGANISM_FORMAT,)),
    entries=(WEIGHTS_FILE, RECORD_FILE),
)


def _is_training_folder(fs: Any, path: str) -> bool:
    return (ORGANISM_OUTPUT.recognise(fs, f"{path}/{ORGANISM_DIR}")
            or SYNTH_OUTPUT.recognise(fs, f"{path}/{CORPUS_DIR}"))


#: The folder of ``esn organism train`` (``retrain_shipped``): esn's when its
#: ``organism/`` or its ``corpus/`` is; each is then claimed as what it is.
TRAINING_OUTPUT = OutputKind(
    name="organism training folder", folder=True, recognise=_is_training_folder,
    entries=(CORPUS_DIR, ORGANISM_DIR, f".{CORPUS_DIR}.*", f".{ORGANISM_DIR}.*"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """Optimiser settings of the two stages; ``trainable`` picks what stage 2 trains
    (``"mlp"``: decoder MLPs only; ``"decoder"``: the whole text decoder and head)."""

    encoder_epochs: int = 8
    encoder_lr: float = 3e-3
    epochs: int = 60
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    trainable: str = "mlp"

    def __post_init__(self) -> None:
        if self.trainable not in ("mlp", "decoder"):
            raise RequestError(f"trainable must be 'mlp' or 'decoder', got {self.trainable!r}")


def train_organism(manifest: str | Path, out: str | Path, *, seed: int = 0,
                   settings: TrainSettings = TrainSettings(), labels: Sequence[str] = LABELS,
                   overwrite: bool = False, threads: int | None = 2) -> dict[str, Any]:
    """Train an organism on the ``train`` split of ``manifest``, save it into ``out``
    (``organism.safetensors`` in float16 and ``organism.json``) and return the metrics:
    accuracy on the ``test`` split through the real probe path, the same with every decoder
    MLP gate activation zeroed, per-class recall, and timings.

    ``out`` must be new, empty or (with ``overwrite``) an earlier organism, whose weights
    and record are then replaced (other files stay); checked before training. Raises
    ``OutputRefusedError`` for anything else and ``StoreExistsError`` for an organism
    without ``overwrite``.
    """
    target = Path(out).expanduser()
    claim_output(target, ORGANISM_OUTPUT, overwrite=overwrite)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _train(Path(manifest), target, seed, settings, Probe(
                labels=tuple(labels), option_order="fixed", max_new_tokens=1))
    finally:
        torch.set_num_threads(previous)


def retrain_shipped(out: str | Path, *, manifest: str | Path | None = None,
                    seed: int | None = None, overrides: Mapping[str, Any] | None = None,
                    overwrite: bool = False, say: Callable[[str], None] = lambda _: None,
                    ) -> tuple[dict[str, Any], bool]:
    """Train as the shipped ``esn-organism`` was (its recorded settings and seed, changed by
    ``overrides`` and ``seed``) into ``out/organism``. Without ``manifest`` the shipped
    organism's corpus is synthesized into ``out/corpus`` first (reused if there, with the
    shipped settings). Returns the metrics and whether the weights equal the shipped ones.

    ``out`` must be new, empty or a folder this function wrote (``TRAINING_OUTPUT``), and
    each of its ``organism/`` and ``corpus/`` new or esn's own, all checked before
    anything is synthesized or trained; ``overwrite`` replaces an earlier organism (and a
    corpus synthesized with other settings), never other files."""
    shipped = organism_record()
    root = Path(out).expanduser()
    corpus, synth = root / CORPUS_DIR, shipped["corpus"]["synth"]
    claim_output(root, TRAINING_OUTPUT, resume=True)
    found = claim_output(corpus, SYNTH_OUTPUT, resume=True) if manifest is None else None
    claim_output(root / ORGANISM_DIR, ORGANISM_OUTPUT, overwrite=overwrite)
    if found is not None and _needs_corpus(corpus, found == "esn", synth, overwrite):
        say(f"synthesizing the shipped organism's corpus into {corpus}")
        synthesize(corpus, per_emotion_per_speaker=synth["per_emotion_per_speaker"],
                   speakers=synth["n_speakers"], seed=synth["seed"],
                   emotions=synth["emotions"], test_every=synth["test_every"],
                   jitter=synth["jitter"], overwrite=overwrite)
    if manifest is None:
        manifest = corpus / "manifest.csv"
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    settings = TrainSettings(**{k: v for k, v in shipped["training"].items() if k in names})
    settings = dataclasses.replace(settings, **dict(overrides or {}))
    chosen_seed = int(shipped["training"]["seed"]) if seed is None else seed
    say(f"training on {manifest} with {settings}, seed {chosen_seed}")
    metrics = train_organism(manifest, root / ORGANISM_DIR, seed=chosen_seed,
                             settings=settings, overwrite=overwrite)
    return metrics, organism_revision(root / ORGANISM_DIR) == organism_revision()


def _needs_corpus(corpus: Path, exists: bool, synth: Mapping[str, Any],
                  overwrite: bool) -> bool:
    """Whether the shipped organism's corpus must be synthesized into ``corpus``: there is
    none, or (with ``overwrite``) a synth corpus of other settings."""
    if not exists:
        return True
    keys = ("version", "seed", "per_emotion_per_speaker", "n_speakers", "emotions",
            "test_every", "jitter")
    found = read_settings(corpus)
    differ = [k for k in keys if found.get(k) != synth.get(k)]
    if differ and not overwrite:
        raise StoreExistsError(
            f"{corpus} holds a synth corpus with other settings than the shipped organism's "
            f"({differ[0]} {found.get(differ[0])!r}, shipped {synth.get(differ[0])!r}); "
            "pass overwrite (--overwrite) to synthesize it again")
    return bool(differ)


def _train(manifest: Path, target: Path, seed: int, settings: TrainSettings,
           probe: Probe) -> dict[str, Any]:
    started = time.perf_counter()
    model, processor = build_organism(seed)
    adapter = QwenOmniAdapter(model, processor, _info("untrained"))
    data = prepare(adapter, str(manifest), probe)
    train, test = data.indices("train"), data.indices("test")
    if len(train) == 0 or len(test) == 0:
        raise RequestError(f"{manifest} needs clips in both the train and the test split")
    prepared = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    encoder_loss = _train_encoder(model, data, train, settings, generator)
    embeds = _input_embeddings(model, data)
    digits = torch.tensor([adapter.tokenizer.convert_tokens_to_ids(str(i + 1))
                           for i in range(len(probe.labels))])
    losses = _train_decoder(model, data, embeds, train, digits, settings, generator)
    trained = time.perf_counter()

    target.parent.mkdir(parents=True, exist_ok=True)
    # Not mkdtemp: its owner-only mode would stay with the folder after the rename.
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        _save_weights(model, staging / WEIGHTS_FILE)
        # Metrics of the saved (float16) weights through the real probe path.
        record: dict[str, Any] = {
            "format": ORGANISM_FORMAT, "version": 1, "model_id": ORGANISM_ID,
            "architecture": "Qwen2_5OmniThinkerForConditionalGeneration",
            "text_config": ORGANISM_TEXT, "audio_config": ORGANISM_AUDIO,
            "probe": {"labels": list(probe.labels), **probe.info.to_dict()},
            "training": {"seed": seed, **dataclasses.asdict(settings),
                         "n_train": len(train), "n_test": len(test),
                         "encoder_task": _encoder_task(data),
                         "encoder_final_loss": encoder_loss,
                         "final_loss": losses[-1], "frozen": _frozen_note(settings)},
            "corpus": {"manifest": manifest.name, "synth": _synth_settings(manifest)},
            "esn_version": esn.__version__, "torch_version": torch.__version__,
        }
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n", "utf-8")
        saved, saved_processor = load_organism(staging)
        saved_adapter = QwenOmniAdapter(saved, saved_processor, _info("saved"))
        clips = _test_clips(manifest, probe)
        metrics = evaluate(saved_adapter, clips, probe)
        with mlp_zeroed(saved_adapter):
            zeroed = evaluate(saved_adapter, clips, probe)
        record["metrics"] = {
            "heldout_accuracy": metrics["accuracy"], "recall": metrics["recall"],
            "mlp_zeroed_accuracy": zeroed["accuracy"], "mlp_zeroed_recall": zeroed["recall"],
            "train_accuracy": _cached_accuracy(model, data, embeds, train, digits),
            "seconds_prepare": round(prepared - started, 1),
            "seconds_train": round(trained - prepared, 1),
        }
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n", "utf-8")
        move_into_place(staging, target, ORGANISM_OUTPUT, last=(RECORD_FILE,))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dict(record["metrics"])


# -- stage 1: the audio encoder on acoustic regression ------------------------------------------

def _train_encoder(model: Any, data: ClipData, train: torch.Tensor, settings: TrainSettings,
                   generator: torch.Generator) -> float:
    tower = model.model.audio_tower if hasattr(model.model, "audio_tower") else model.audio_tower
    n_prosody = 0 if data.prosody is None else int(data.prosody.shape[1])
    head = nn.Linear(int(ORGANISM_AUDIO["output_dim"]), N_TARGETS + n_prosody)
    params = [*tower.parameters(), *head.parameters()]
    optimiser = torch.optim.Adam(params, lr=settings.encoder_lr)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(settings.encoder_epochs):
        for batch in _batches(train, settings.batch_size, generator):
            outputs = _audio_outputs(model, data, batch)
            predicted = head(torch.cat(outputs))
            targets = torch.cat([data.targets[int(i)] for i in batch])
            if data.prosody is not None:  # each clip's parameters at each of its tokens
                counts = torch.tensor([len(o) for o in outputs])
                targets = torch.cat([targets, data.prosody[batch].repeat_interleave(counts, 0)],
                                    dim=1)
            voiced = torch.cat([data.voiced[int(i)] for i in batch])
            error = (predicted - targets) ** 2
            error[:, 1] = error[:, 1] * voiced  # F0 only where voiced
            loss = error.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    for p in tower.parameters():
        p.requires_grad_(False)
    return round(float(loss.detach()), 5)


def _audio_outputs(model: Any, data: ClipData, batch: torch.Tensor) -> list[torch.Tensor]:
    """Per clip of ``batch``, the audio encoder's output ``(n_audio_tokens, hidden)``."""
    mask = data.feature_mask[batch]
    frames = int(mask.sum(-1).max())
    out = model.get_audio_features(input_features=data.features[batch][:, :, :frames],
                                   feature_attention_mask=mask[:, :frames])
    counts = data.audio[batch].sum(-1).tolist()
    return list(torch.split(out.last_hidden_state, counts))


@torch.no_grad()
def _input_embeddings(model: Any, data: ClipData) -> torch.Tensor:
    """``(N, L, hidden)`` decoder inputs: token embeddings, audio features at audio positions."""
    embeds = model.get_input_embeddings()(data.input_ids).clone()
    for start in range(0, len(data), 64):
        batch = torch.arange(start, min(start + 64, len(data)))
        features = torch.cat(_audio_outputs(model, data, batch))
        chunk = embeds[batch]
        chunk[data.audio[batch]] = features
        embeds[batch] = chunk
    return embeds


# -- stage 2: the decoder answers the probe -------------------------------------------------

def _train_decoder(model: Any, data: ClipData, embeds: torch.Tensor, train: torch.Tensor,
                   digits: torch.Tensor, settings: TrainSettings,
                   generator: torch.Generator) -> list[float]:
    for p in model.parameters():
        p.requires_grad_(False)
    decoder = model.get_decoder()
    if settings.trainable == "mlp":
        params = [p for layer in decoder.layers for p in layer.mlp.parameters()]
    else:
        params = [*decoder.layers.parameters(), *decoder.norm.parameters(),
                  *model.lm_head.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.epochs * -(-len(train) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=settings.lr,
                                                   total_steps=steps, pct_start=0.1)
    losses = []
    for _ in range(settings.epochs):
        total = 0.0
        for batch in _batches(train, settings.batch_size, generator):
            logits = _last_logits(model, data, embeds, batch)
            loss = nn.functional.cross_entropy(logits, digits[data.labels[batch]])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        losses.append(round(total / len(train), 5))
    for p in model.parameters():
        p.requires_grad_(False)
    return losses


def _last_logits(model: Any, data: ClipData, embeds: torch.Tensor,
                 batch: torch.Tensor) -> torch.Tensor:
    """``(B, vocab)`` logits of the next token after each prompt (the answer's first token)."""
    out = model.model.language_model(
        inputs_embeds=embeds[batch], attention_mask=data.attention_mask[batch],
        position_ids=data.positions[:, batch], use_cache=False,
    )
    logits: torch.Tensor = model.lm_head(out.last_hidden_state[:, -1])
    return logits


@torch.no_grad()
def _cached_accuracy(model: Any, data: ClipData, embeds: torch.Tensor, items: torch.Tensor,
                     digits: torch.Tensor) -> float:
    logits = torch.cat([_last_logits(model, data, embeds, items[i:i + 64])
                        for i in range(0, len(items), 64)])
    return round(float((logits.argmax(-1) == digits[data.labels[items]]).float().mean()), 4)


def _batches(items: torch.Tensor, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = items[torch.randperm(len(items), generator=generator)]
    yield from torch.split(order, size)


# -- evaluation through the real probe path -------------------------------------------------

def _test_clips(manifest: Path, probe: Probe) -> list[tuple[np.ndarray, str]]:
    listing = load_corpus(f"manifest:{manifest}", emotions=list(probe.labels), splits="test")
    return [(load_audio(u.path), u.emotion) for u in listing.utterances]


def evaluate(adapter: ModelAdapter, clips: Sequence[tuple[np.ndarray, str]], probe: Probe,
             *, batch_size: int = 32, ids: Sequence[str] | None = None,
             keep_answers: bool = False) -> dict[str, Any]:
    """Accuracy and per-class recall of greedy answers to ``probe`` (``adapter.generate``,
    ``probe.parse``) on ``(audio, emotion)`` pairs: each asked with the options in
    ``probe.labels``' order, or with ``ids`` with ``probe.options_for(ids[i])`` (the study's
    random order per item). ``keep_answers``: also the parsed answer per item."""
    options = ([probe.labels] * len(clips) if ids is None
               else [probe.options_for(i) for i in ids])
    said: list[str] = []
    for start in range(0, len(clips), batch_size):
        chunk, shown = clips[start:start + batch_size], options[start:start + batch_size]
        batch = adapter.build_batch([a for a, _ in chunk], [probe.prompt(o) for o in shown])
        answers = adapter.generate(batch, probe.max_new_tokens)
        said.extend(probe.parse(a, o) for a, o in zip(answers, shown, strict=True))
    gold = [e for _, e in clips]
    hits = [s == g for s, g in zip(said, gold, strict=True)]
    recall = {e: round(float(np.mean([h for h, g in zip(hits, gold, strict=True) if g == e])), 4)
              for e in probe.labels if e in gold}
    result: dict[str, Any] = {"accuracy": round(float(np.mean(hits)), 4), "recall": recall}
    if keep_answers:
        result["answers"] = said
    return result


@contextlib.contextmanager
def mlp_zeroed(adapter: ModelAdapter) -> Iterator[None]:
    """Every decoder gate activation (``mlp.act_fn`` output) set to 0 while inside."""
    handles = [m.register_forward_hook(lambda _m, _a, out: torch.zeros_like(out))
               for m in adapter.gate_modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _save_weights(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()
             if not k.startswith("model.visual.")}
    # One metadata key: safetensors writes the metadata map in no fixed order. Bytes, not
    # save_file, whose owner-only file mode would stay with the file after the rename.
    path.write_bytes(save(state, metadata={"format": "pt"}))


def _synth_settings(manifest: Path) -> dict[str, Any] | None:
    from esn.pipeline.synth import read_settings

    try:
        settings = read_settings(manifest)
    except (OSError, ValueError):
        return None
    settings.pop("speakers", None)
    settings.pop("profiles", None)
    return settings


def _encoder_task(data: ClipData) -> str:
    task = "per-token regression of log RMS, log F0, voicing, log spectral centroid"
    if data.prosody is not None:
        task += " and the clip's prosody parameters (" + ", ".join(PROSODY_COLUMNS) + ")"
    return task


def _frozen_note(settings: TrainSettings) -> str:
    if settings.trainable == "mlp":
        return ("audio encoder (after stage 1), token embeddings, attention, norms, LM head "
                "(seeded random)")
    return "audio encoder (after stage 1), token embeddings"


def _info(revision: str) -> ModelInfo:
    return ModelInfo(id=ORGANISM_ID, revision=revision, adapter=QwenOmniAdapter.family,
                     dtype="float32")
