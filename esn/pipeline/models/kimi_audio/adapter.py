"""``KimiAudioAdapter``: Kimi-Audio-7B-Instruct (``model_type`` ``moonshot_kimia``) behind
esn's adapter interface, on esn's rebuild of its text branch (``modeling``).

Loading from a checkpoint folder (a local directory, or a hub id's snapshot in the cache):
the weights through ``KimiAudioForText.from_pretrained`` (no remote code, sdpa attention),
the text tokenizer with ``AutoTokenizer`` (the snapshot's own ``tokenization_kimia.py`` is
remote code: ``trust_remote_code`` is required exactly when the folder's tokenizer needs it),
and the speech front-end (``frontend``: kimia_infer's GLM-4-Voice tokenizer and the
snapshot's ``whisper-large-v3/``, or esn's stand-in). The store records the snapshot's
revision, and the front-end in the config digest.

Generation is Kimi's greedy text decoding: argmax over the whole head, each new text token
fed back with a blank on the audio stream, stopping at ``<|im_kimia_text_eos|>``. Long
audio is heard whole, one 30-s Whisper window after another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from esn.errors import ModelLoadError
from esn.pipeline.decoding import greedy_from_embeddings
from esn.pipeline.models.base import (
    LoadOptions,
    ModelAdapter,
    ProbeBatch,
    _mask_positions,
    check_batch,
    model_info,
    place_model,
)
from esn.pipeline.models.kimi_audio.frontend import (
    FRONTEND_FILE,
    SpeechFrontEnd,
    StandInFrontEnd,
    load_frontend,
)
from esn.pipeline.models.kimi_audio.modeling import (
    KIMI_MODEL_TYPE,
    KimiAudioConfig,
    KimiAudioForText,
)
from esn.pipeline.models.kimi_audio.streams import (
    KimiSpecialIds,
    build_streams,
    encode_text,
    pad_streams,
)

__all__ = ["KimiAudioAdapter", "KimiProcessor", "checkpoint_folder"]


@dataclasses.dataclass(frozen=True)
class KimiProcessor:
    """What turns a clip and a question into Kimi's inputs: the text tokenizer, the speech
    front-end and the prompt's marker ids."""

    tokenizer: Any
    frontend: SpeechFrontEnd
    ids: KimiSpecialIds
    sampling_rate: int = 16000

    def save_pretrained(self, folder: str | Path) -> None:
        """The tokenizer's files, and ``esn_speech_frontend.json`` for esn's stand-in (the
        kimia_infer front-end lives outside the checkpoint: nothing to write)."""
        self.tokenizer.save_pretrained(str(folder))
        if isinstance(self.frontend, StandInFrontEnd):
            marker = Path(folder) / FRONTEND_FILE
            marker.write_text(json.dumps(self.frontend.description(), indent=2) + "\n",
                              encoding="utf-8")


class KimiAudioAdapter(ModelAdapter):
    family: ClassVar[str] = "kimi_audio"
    model_types: ClassVar[tuple[str, ...]] = (KIMI_MODEL_TYPE,)
    architectures: ClassVar[tuple[str, ...]] = ("MoonshotKimiaForCausalLM",)
    model_class: ClassVar[str] = "KimiAudioForText"

    processor: KimiProcessor

    @classmethod
    def from_pretrained(cls, options: LoadOptions, *, commit_hash: str | None) -> ModelAdapter:
        folder = checkpoint_folder(options.model_id, options.revision)
        # Read as esn's config class: transformers' auto classes would follow the
        # snapshot's auto_map to its remote code.
        config = KimiAudioConfig.from_pretrained(str(folder))
        tokenizer = load_text_tokenizer(folder, config,
                                        trust_remote_code=options.trust_remote_code)
        try:
            ids = KimiSpecialIds.from_tokenizer(tokenizer, config.kimia_id("kimia_token_offset"))
        except ValueError as err:
            raise ModelLoadError(f"{folder}: {err}") from err
        # The front-end before the weights: a missing package fails in seconds.
        frontend = load_frontend(folder, feature_dim=config.adaptor_input_dim)
        kwargs: dict[str, Any] = dict(config=config, dtype=options.torch_dtype or "auto",
                                      attn_implementation=options.attn_implementation or "sdpa")
        if torch.device(options.device).type != "cpu" and importlib.util.find_spec("accelerate"):
            kwargs["device_map"] = options.device
        model: Any = place_model(KimiAudioForText.from_pretrained(str(folder), **kwargs),
                                 options)
        info = model_info(options, model, family=cls.family,
                          revision=commit_hash or options.revision or "")
        digest = hashlib.sha256(f"{info.config_digest}|{frontend.identity}".encode()).hexdigest()
        return cls(model, KimiProcessor(tokenizer, frontend, ids),
                   dataclasses.replace(info, config_digest=digest))

    # -- structure ----------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.processor.sampling_rate

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    @property
    def ids(self) -> KimiSpecialIds:
        return self.processor.ids

    # -- inputs and outputs -------------------------------------------------------------------

    def build_batch(self, audios: Sequence[np.ndarray], prompts: Sequence[str]) -> ProbeBatch:
        items = [build_streams(a, p, tokenizer=self.tokenizer,
                               frontend=self.processor.frontend, ids=self.ids)
                 for a, p in zip(check_batch(audios, prompts), prompts, strict=True)]
        padded = pad_streams(items, pad_id=self.ids.text_blank,
                             feature_dim=self.model.config.adaptor_input_dim)
        valid = padded.pop("valid")
        attention = padded["attention_mask"]
        inputs = {k: v.to(self.device, self.dtype if v.is_floating_point() else None)
                  for k, v in padded.items()}
        inputs["position_ids"] = _mask_positions(attention).to(self.device)
        return ProbeBatch(inputs=inputs, valid=valid.to(self.device),
                          audio=inputs["is_continuous_mask"].clone(),
                          n_tokens=tuple(int(n) for n in attention.sum(-1)))

    @torch.no_grad()
    def generate(self, batch: ProbeBatch, max_new_tokens: int) -> list[str]:
        inputs = batch.inputs
        hidden = self.model.model.embed_streams(
            inputs["input_ids"], inputs["text_input_ids"], inputs["whisper_features"],
            inputs["is_continuous_mask"])
        decoded = greedy_from_embeddings(self, hidden, batch.attention_mask,
                                         inputs["position_ids"], max_new_tokens)
        return [self.decode(torch.tensor(d.token_ids, dtype=torch.long)) for d in decoded]

    def decode(self, token_ids: torch.Tensor) -> str:
        """Text of generated ids as Kimi returns it: up to the first text end, ids of the
        speech range and prompt markers dropped."""
        kept: list[int] = []
        for token in token_ids.tolist():
            if token == self.ids.text_eos:
                break
            if token < self.ids.token_offset and token not in self.ids.markers:
                kept.append(int(token))
        try:
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
        except TypeError:  # Kimi's own tokenizer may take the ids only
            text = self.tokenizer.decode(kept)
        return str(text).strip()

    def encode_text(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset({self.ids.text_eos})

    def next_token_embeddings(self, token_ids: torch.Tensor) -> torch.Tensor:
        """A generated text token goes back on the text stream, a blank on the audio one."""
        ids = token_ids[:, None]
        blank = torch.full_like(ids, self.ids.text_blank)
        out: torch.Tensor = self.model.model.embed_streams(blank, ids, None, None)
        return out


def checkpoint_folder(model_id: str, revision: str | None) -> Path:
    """The folder holding a Kimi checkpoint: the directory itself, or the cached snapshot of
    a hub id (where its ``config.json`` lies)."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path
    from transformers.utils.hub import cached_file

    config = cached_file(model_id, "config.json", revision=revision)
    if config is None:
        raise ModelLoadError(f"cannot find Kimi-Audio checkpoint {model_id!r}")
    return Path(config).parent


def load_text_tokenizer(folder: Path, config: KimiAudioConfig, *,
                        trust_remote_code: bool) -> Any:
    """The checkpoint's text tokenizer: a ``tokenizer.json`` loads without remote code;
    Kimi's released snapshot has only ``tiktoken.model`` and ``tokenization_kimia.py``, remote
    code that runs only with ``trust_remote_code``."""
    from transformers import AutoTokenizer

    needs_code = not (folder / "tokenizer.json").is_file() and _tokenizer_has_code(folder)
    if needs_code and not trust_remote_code:
        raise ModelLoadError(
            f"{folder}: Kimi-Audio's text tokenizer is code that comes with the checkpoint "
            "(tokenization_kimia.py): allow it with --trust-remote-code (the model itself "
            "runs on esn's own rebuild, without remote code)"
        )
    try:
        return AutoTokenizer.from_pretrained(str(folder), config=config,
                                             trust_remote_code=needs_code)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{folder}: cannot load the text tokenizer: {err}") from err


def _tokenizer_has_code(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return False
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map", {})
    except ValueError as err:
        raise ModelLoadError(f"{config}: not valid JSON ({err})") from err
    return bool(auto_map)
