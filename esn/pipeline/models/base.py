"""The one small interface every model family implements, and the probe batch it builds.

An adapter hides everything model-specific: how to load it, how to turn audio + prompt
into padded model inputs with the model's own processor and chat template, where the
decoder layers and their gate activations (``mlp.act_fn``) are, which positions are valid
(not padding, not special tokens) and which of those are audio, how to generate an
answer, and what a later replay of layers c..N-1 needs (positions, mask, norm, head).

``ChatTemplateAdapter`` is the shared implementation for families whose transformers
processor builds the whole prompt with ``apply_chat_template``; a family module then only
declares its classes and how an audio clip enters a conversation. Its processor half
(``ChatTemplateEncoder``: clips and prompts to the processor's tensors) is a picklable
object of its own, so that extraction can run it in worker processes
(``esn.pipeline.extract.encoding``); ``probe_batch`` turns its output into model inputs.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from esn.errors import ModelLoadError
from esn.pipeline.decoding import greedy_generation
from esn.schemas.store import ModelInfo

__all__ = ["BatchEncoder", "ChatTemplateAdapter", "ChatTemplateEncoder", "LoadOptions",
           "ModelAdapter", "ProbeBatch", "array_audio_item", "dtype_name"]

#: Clips and prompts -> the processor's output (CPU tensors unless the features are computed
#: on ``feature_device``); picklable, so that a worker process can run it.
BatchEncoder = Callable[[Sequence[np.ndarray], Sequence[str], str], dict[str, Any]]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
}


def array_audio_item(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """The conversation content item that carries one clip, as the array itself."""
    return {"type": "audio", "audio": audio}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """How to load a model: where from, in what precision, on which device.

    ``dtype="auto"`` keeps the checkpoint's dtype, except on the CPU where half precision
    (bf16/fp16) is promoted to float32: CPU half-precision kernels are slow or missing and
    the tiny models and tests need fp32 exactness.
    """

    model_id: str
    revision: str | None = None
    dtype: str = "auto"  # "auto" | "float32" | "bfloat16" | "float16"
    device: str = "cpu"
    attn_implementation: str | None = None  # None = the model's default ("sdpa" mostly)
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ModelLoadError(
                f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {self.dtype!r}"
            )

    @property
    def torch_dtype(self) -> torch.dtype | None:
        """The requested dtype, ``None`` for ``"auto"``."""
        return None if self.dtype == "auto" else DTYPES[self.dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbeBatch:
    """A padded batch of probe inputs for B items and L prompt positions.

    Attributes:
        inputs: Keyword arguments for the model's ``forward``/``generate`` (``input_ids``,
            ``attention_mask``, for 1-D RoPE families ``position_ids``, audio features and
            their masks...), all on the device. Text tensors are ``(B, L)``; audio features
            may be per 30-s window rather than per item (AF3, Voxtral).
        valid: ``(B, L)`` bool: positions the statistics count (not padding, not special
            tokens; audio positions included).
        audio: ``(B, L)`` bool: the audio positions (a subset of ``valid``).
        n_tokens: Number of non-padding prompt positions of each item.
    """

    inputs: dict[str, torch.Tensor]
    valid: torch.Tensor
    audio: torch.Tensor
    n_tokens: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(self.valid.shape[0])

    @property
    def length(self) -> int:
        return int(self.valid.shape[1])

    @property
    def attention_mask(self) -> torch.Tensor:
        return self.inputs["attention_mask"]

    @property
    def input_ids(self) -> torch.Tensor:
        return self.inputs["input_ids"]


class ModelAdapter(abc.ABC):
    """One loaded model of one family, behind the interface the pipeline uses."""

    #: Registry name of the family (``qwen2_5_omni``, ``audioflamingo3``...).
    family: ClassVar[str] = ""
    #: ``model_type`` values of checkpoint configs that this family loads.
    model_types: ClassVar[tuple[str, ...]] = ()
    #: ``architectures`` of checkpoint configs that this family loads when their
    #: ``model_type`` is missing (configs of remote-code models may leave it out).
    architectures: ClassVar[tuple[str, ...]] = ()
    #: Name of the transformers model class that ``from_pretrained`` loads.
    model_class: ClassVar[str] = ""

    def __init__(self, model: nn.Module, processor: Any, info: ModelInfo) -> None:
        # Any: transformers models are typed loosely (attributes are ``Tensor | Module``).
        self.model: Any = model
        self.processor = processor
        self.info = info
        #: Where the feature extractor computes the log-mel features (torch STFT): ``None``
        #: follows the model (a CUDA model's features are computed on its GPU; else "cpu").
        self.feature_device: str | None = None

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, options: LoadOptions, *, commit_hash: str | None) -> ModelAdapter:
        """Load ``cls.model_class`` and the checkpoint's processor (``AutoProcessor``),
        placed and in eval mode. Errors from transformers are left to the caller (the
        registry turns them into ``ModelLoadError``)."""
        import transformers

        model_cls = getattr(transformers, cls.model_class)
        kwargs: dict[str, Any] = dict(
            revision=options.revision, trust_remote_code=options.trust_remote_code,
            dtype=options.torch_dtype or "auto",
        )
        if torch.device(options.device).type != "cpu" and importlib.util.find_spec("accelerate"):
            # Straight onto the device; without accelerate, load on the CPU and move.
            kwargs["device_map"] = options.device
        if options.attn_implementation:
            kwargs["attn_implementation"] = options.attn_implementation
        model = model_cls.from_pretrained(options.model_id, **kwargs)
        processor = transformers.AutoProcessor.from_pretrained(
            options.model_id, revision=options.revision,
            trust_remote_code=options.trust_remote_code,
        )
        model = place_model(model, options)
        info = model_info(options, model, family=cls.family,
                          revision=commit_hash or options.revision or "")
        return cls(model, processor, info)

    # -- structure ----------------------------------------------------------------------------

    @property
    def decoder(self) -> Any:
        """The text decoder module (``model.get_decoder()``): ``.layers``, ``.norm``,
        ``.rotary_emb``, ``.config`` (typed ``Any``: its attributes are dynamic)."""
        return self.model.get_decoder()

    @property
    def layers(self) -> Sequence[nn.Module]:
        return list(self.decoder.layers)

    @property
    def lm_head(self) -> nn.Module:
        head: nn.Module = self.model.get_output_embeddings()
        return head

    def gate_modules(self) -> list[nn.Module]:
        """Per decoder layer, the module whose output is the gate activation SiLU(gate_proj(x))."""
        layers: Sequence[Any] = self.layers
        return [layer.mlp.act_fn for layer in layers]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        """Width of the residual stream (what a hidden-state checkpoint stores per position)."""
        return int(self.decoder.config.hidden_size)

    @property
    def n_neurons(self) -> int:
        first: Any = self.layers[0]
        return int(first.mlp.gate_proj.out_features)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return model_dtype(self.model)

    @property
    def sample_rate(self) -> int:
        """Audio sample rate the feature extractor expects."""
        return int(getattr(self.processor.feature_extractor, "sampling_rate", 16000))

    @property
    def max_audio_seconds(self) -> float | None:
        """The most seconds of a clip the model hears; the processor drops the rest. ``None``:
        the whole clip is heard (see each adapter's docstring and the README's long audio)."""
        return None

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    # -- inputs and outputs -------------------------------------------------------------------

    @abc.abstractmethod
    def build_batch(self, audios: Sequence[np.ndarray], prompts: Sequence[str]) -> ProbeBatch:
        """Padded model inputs for ``audios[i]`` (mono float32 at ``sample_rate``) with
        ``prompts[i]`` as the user's text, through the model's processor and chat template,
        ending with the assistant turn's start so that generation answers the prompt."""

    def batch_encoder(self) -> BatchEncoder | None:
        """The processor half of ``build_batch`` as a picklable callable whose output
        ``probe_batch`` takes, for building batches in worker processes; ``None``: this
        family builds its batches in this process only."""
        return None

    def probe_batch(self, encoded: dict[str, Any]) -> ProbeBatch:
        """A ``batch_encoder`` output as model inputs on the model's device."""
        raise NotImplementedError(f"{self.family} has no batch encoder")

    def generate(self, batch: ProbeBatch, max_new_tokens: int) -> list[str]:
        """Greedy answers (new tokens only, special tokens dropped), one per item, under
        esn's own decoding (``esn.pipeline.decoding``): the checkpoint's generation_config
        (sampling, penalties, suppressed tokens...) plays no part."""
        with torch.no_grad(), greedy_generation(self.model, self.tokenizer,
                                                max_new_tokens) as config:
            out = self.model.generate(**batch.inputs, generation_config=config)
        new = out[:, batch.length:]
        return [self.decode(row) for row in new]

    def decode(self, token_ids: torch.Tensor) -> str:
        return str(self.tokenizer.decode(token_ids.tolist(), skip_special_tokens=True)).strip()

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` alone (no bos/eos or other added tokens)."""
        return [int(i) for i in self.tokenizer.encode(text, add_special_tokens=False)]

    @property
    def stop_ids(self) -> frozenset[int]:
        """End-of-sequence ids that end ``generate``: the model's generation config's, else
        its config's, else the tokenizer's."""
        model: Any = self.model
        for value in (getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                      getattr(model.config, "eos_token_id", None),
                      getattr(self.tokenizer, "eos_token_id", None)):
            if value is not None:
                return frozenset([value] if isinstance(value, int) else (int(v) for v in value))
        return frozenset()

    def next_token_embeddings(self, token_ids: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H)`` inputs of layer 0 for one generated token per row ``(B,)``, as the
        model's own decoding feeds it back."""
        embed: Any = self.model.get_input_embeddings()
        out: torch.Tensor = embed(token_ids[:, None])
        return out

    # -- replay (rerunning layers c..N-1 from stored hidden states) ----------------------------

    def rope_positions(self, batch: ProbeBatch) -> torch.Tensor:
        """Positions that the rotary embedding of the decoder gets for this batch:
        ``(B, L)`` for 1-D RoPE models (``cumsum(mask) - 1``, as generation uses),
        ``(3, B, L)`` for Qwen2.5-Omni's mRoPE."""
        return _mask_positions(batch.attention_mask)

    def causal_mask(self, hidden: torch.Tensor, batch: ProbeBatch) -> torch.Tensor | None:
        """The decoder layers' attention mask for ``hidden`` ``(B, L, H)`` (``None`` means
        plain causal attention, which sdpa uses when there is no padding)."""
        from transformers.masking_utils import create_causal_mask

        # The 4th argument (the cache) is positional: its keyword name changed in 5.24.
        return create_causal_mask(self.decoder.config, hidden, batch.attention_mask, None)

    def replay_logits(
        self, hidden: torch.Tensor, batch: ProbeBatch, start_layer: int,
        *, positions: torch.Tensor | None = None, last_only: bool = False,
    ) -> torch.Tensor:
        """Logits ``(B, L, V)`` from the residual stream entering ``start_layer``
        (``hidden_states[start_layer]`` of a forward with ``output_hidden_states=True``):
        reruns decoder layers ``start_layer..N-1``, the final norm and the LM head, never the
        audio encoder. Hooks on those layers (e.g. gate interventions) fire as in a full
        forward. Runs under the caller's grad mode; ``positions`` defaults to
        ``rope_positions(batch)``. (``hidden_states[n_layers]`` is already normed, so replay
        starts at a layer, at most the last one.) ``last_only``: the final norm and the LM
        head (at 7B the largest matrix) run at the last position only, ``(B, 1, V)``: all
        that the next token needs.
        """
        if not 0 <= start_layer < self.n_layers:
            raise ValueError(f"start_layer must be in 0..{self.n_layers - 1}, got {start_layer}")
        decoder = self.decoder
        h = hidden.to(device=self.device, dtype=self.dtype)
        pos = self.rope_positions(batch) if positions is None else positions
        embeddings = decoder.rotary_emb(h, pos.to(self.device))
        mask = self.causal_mask(h, batch)
        layers: Sequence[Any] = self.layers
        for layer in layers[start_layer:]:
            out = layer(h, attention_mask=mask, position_embeddings=embeddings)
            h = out[0] if isinstance(out, tuple) else out
        return self.lm_head(decoder.norm(h[:, -1:] if last_only else h))


class ChatTemplateAdapter(ModelAdapter):
    """Adapters whose processor renders and tokenizes the prompt with its chat template.

    ``build_batch`` sends one single-turn conversation per item (the audio, then the text)
    through ``processor.apply_chat_template`` with left text padding, and derives ``valid``
    and ``audio`` from the token ids: special tokens (``all_special_ids`` and added tokens
    marked special) are masked out, except the audio placeholders, which are the audio span.
    """

    #: Put ``position_ids`` (``cumsum(mask) - 1``, what ``generate`` uses) in the inputs, so
    #: that a bare forward, ``generate`` and ``replay_logits`` use the same positions and an
    #: item's positions do not depend on how much left padding the batch gives it.
    explicit_positions: ClassVar[bool] = True

    def __init__(self, model: nn.Module, processor: Any, info: ModelInfo) -> None:
        super().__init__(model, processor, info)
        # On the tokenizer, never the processor: a processor-level padding_side also flips
        # the audio feature extractor to left padding (models.md, pitfalls).
        self.tokenizer.padding_side = "left"

    @functools.cached_property
    def audio_token_id(self) -> int:
        """Id of the audio placeholder that the processor repeats once per audio token and
        the model replaces with audio features (read from the model's config)."""
        for name in ("audio_token_id", "audio_token_index"):
            value = getattr(self.model.config, name, None)
            if isinstance(value, int):
                return value
        return int(self.tokenizer.convert_tokens_to_ids(self.processor.audio_token))

    @functools.cached_property
    def special_token_ids(self) -> frozenset[int]:
        """Ids of special/control tokens (padding, chat markers, audio bos/eos/placeholder)."""
        tokenizer = self.tokenizer
        ids = {int(i) for i in tokenizer.all_special_ids}
        try:
            added = tokenizer.added_tokens_decoder
        except NotImplementedError:
            added = {}
        if not isinstance(added, Mapping):  # mistral-common: all are in all_special_ids
            added = {}
        ids.update(int(i) for i, token in added.items() if getattr(token, "special", False))
        return frozenset(ids)

    #: How one clip enters the conversation (a function of the clip and the sample rate).
    audio_item = staticmethod(array_audio_item)

    def batch_encoder(self) -> ChatTemplateEncoder:
        return ChatTemplateEncoder(processor=self.processor, sample_rate=self.sample_rate,
                                   audio_item=self.audio_item)

    def build_batch(self, audios: Sequence[np.ndarray], prompts: Sequence[str]) -> ProbeBatch:
        device = self.feature_device or ("cpu" if self.device.type != "cuda" else str(self.device))
        return self.probe_batch(self.batch_encoder()(audios, prompts, device))

    def probe_batch(self, encoded: dict[str, Any]) -> ProbeBatch:
        """Masks from the processor output and the inputs the model's forward takes, on the
        model's device (floating tensors in the model's dtype)."""
        ids = encoded["input_ids"]
        attention = encoded["attention_mask"].bool()
        if not bool(attention[:, -1].all()):
            raise RuntimeError(f"{self.family}: expected left padding from the processor")
        audio = (ids == self.audio_token_id) & attention
        special = torch.isin(ids, torch.tensor(sorted(self.special_token_ids), dtype=ids.dtype))
        valid = attention & (~special | audio)
        accepted = inspect.signature(self.model.forward).parameters
        inputs = {
            key: value.to(self.device, self.dtype if value.is_floating_point() else None)
            for key, value in encoded.items()
            if key in accepted and isinstance(value, torch.Tensor)
        }
        if self.explicit_positions and "position_ids" in accepted:
            inputs["position_ids"] = _mask_positions(attention).to(self.device)
        return ProbeBatch(
            inputs=inputs, valid=valid.to(self.device), audio=audio.to(self.device),
            n_tokens=tuple(int(n) for n in attention.sum(-1)),
        )


@dataclasses.dataclass(frozen=True)
class ChatTemplateEncoder:
    """Clips and prompts through the processor's chat template: one single-turn
    conversation per item (the audio, then the text), left text padding, the features
    computed on ``feature_device`` (``"cpu"``, or a CUDA device for the Whisper feature
    extractors' torch STFT). Holds only the processor, so it pickles into a worker."""

    processor: Any
    sample_rate: int
    audio_item: Callable[[np.ndarray, int], dict[str, Any]] = array_audio_item

    def __call__(self, audios: Sequence[np.ndarray], prompts: Sequence[str],
                 feature_device: str = "cpu") -> dict[str, Any]:
        clips = check_batch(audios, prompts)
        audio_kwargs: dict[str, Any] = {"sampling_rate": self.sample_rate}
        if feature_device != "cpu":
            audio_kwargs["device"] = feature_device
        encoded = self.processor.apply_chat_template(
            [[{"role": "user", "content": [self.audio_item(a, self.sample_rate),
                                           {"type": "text", "text": p}]}]
             for a, p in zip(clips, prompts, strict=True)],
            tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt",
            # Padding only for the text: a bare `padding=` would reach the feature extractor.
            processor_kwargs={"text_kwargs": {"padding": "longest"},
                              "audio_kwargs": audio_kwargs},
        )
        return dict(encoded)


def _mask_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` positions counted over the unmasked tokens (0 on left padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def whisper_window_seconds(processor: Any) -> float:
    """The seconds a Whisper feature extractor keeps of a clip (``n_samples``, 30 s in the
    released checkpoints): it pads or truncates every clip to that many samples."""
    extractor = processor.feature_extractor
    return float(extractor.n_samples) / float(extractor.sampling_rate)


def check_batch(audios: Sequence[np.ndarray], prompts: Sequence[str]) -> list[np.ndarray]:
    """The batch's clips (``check_clip``), one prompt each and at least one."""
    if len(audios) != len(prompts) or not audios:
        raise ValueError(
            f"need as many prompts as audios (at least one), got {len(audios)} audios "
            f"and {len(prompts)} prompts"
        )
    return [check_clip(a) for a in audios]


def check_clip(audio: np.ndarray) -> np.ndarray:
    """A clip as a non-empty 1-D float32 array (what every processor here expects)."""
    clip = np.asarray(audio, dtype=np.float32)
    if clip.ndim != 1 or clip.size == 0:
        raise ValueError(f"audio must be a non-empty mono 1-D array, got shape {clip.shape}")
    return clip


#: Config keys that say how a checkpoint was saved or loaded, not what model it is.
_LOADING_KEYS = frozenset({"transformers_version", "_name_or_path", "dtype", "torch_dtype",
                           "_attn_implementation_autoset", "_attn_implementation",
                           "attn_implementation", "_commit_hash", "use_cache"})


def config_digest(config: Any) -> str:
    """sha256 of a transformers config (nested sub-configs included), without the keys that
    record how it was saved or loaded: two loads of one checkpoint give the same digest."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in sorted(value.items()) if k not in _LOADING_KEYS}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(config.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def model_info(options: LoadOptions, model: nn.Module, *, family: str,
               revision: str) -> ModelInfo:
    """What a store records of the model: id, revision, family, dtype and how it was loaded."""
    config: Any = getattr(model, "config", None)
    attn = str(getattr(config, "_attn_implementation", "") or "") if config is not None else ""
    return ModelInfo(id=options.model_id, revision=revision, adapter=family,
                     dtype=dtype_name(model_dtype(model)), attn_implementation=attn,
                     trust_remote_code=options.trust_remote_code,
                     config_digest=config_digest(config) if config is not None else "")


def model_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def place_model(model: nn.Module, options: LoadOptions) -> nn.Module:
    """Apply ``options``' device and dtype policy to a loaded model; eval mode."""
    dtype = options.torch_dtype
    if dtype is None and torch.device(options.device).type == "cpu":
        if model_dtype(model) in (torch.float16, torch.bfloat16):
            dtype = torch.float32
    model = model.to(device=options.device, dtype=dtype) if dtype else model.to(options.device)
    return model.eval()
