"""Built-in tiny models: random-weight instances of the real transformers classes.

``tiny-qwen2_5_omni``, ``tiny-audioflamingo3``, ``tiny-qwen2_audio``, ``tiny-voxtral`` and
``tiny-kimi_audio`` (``esn.pipeline.models.kimi_audio.tiny``) are accepted wherever a model
id is. Each is the family's real model class with a tiny config
(4 decoder layers, hidden 32, 64 gate neurons per layer), weights drawn from a fixed seed
(the global RNG is left alone), the family's real processor class with a small offline
tokenizer (``tiny_tokenizers``) and a chat template shaped like the real one. Building needs
no network and no files (except Voxtral's tekken JSON in a temporary folder that lives as long
as its tokenizer, see ``tekken_tokenizer``).

Every call builds a fresh model and processor (0.03-0.06 s; the first call in a process also
imports the transformers model modules, a few seconds), so callers own what they get and may
change it (hooks, dtype, device) without affecting anyone else.
Audio framing is the real one (Whisper feature extractors, 30-s windows): 25 tokens per
second for Omni, Qwen2-Audio and AF3, 375 tokens per started 30-s chunk for Voxtral.
Saved with ``save_pretrained``, a tiny model loads back from its directory like a checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from esn.pipeline.models.tiny_tokenizers import tekken_tokenizer, word_level_tokenizer

__all__ = ["TINY_MODELS", "TINY_SEED", "TinyModel", "build_audioflamingo3", "build_qwen2_5_omni",
           "build_tiny"]

TINY_SEED = 1234
SAMPLE_RATE = 16000
# Shared sizes of the tiny text decoders. initializer_range is raised from the usual 0.02 so
# that random logits have clear gaps (greedy answers do not hinge on float rounding).
TEXT_SIZES: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False,
    initializer_range=0.2,
)
#: Audio encoder of tiny-qwen2_5_omni (its output_dim is the text hidden size).
OMNI_AUDIO: dict[str, Any] = dict(
    d_model=32, encoder_attention_heads=4, encoder_ffn_dim=32, encoder_layers=2,
    num_mel_bins=128, max_source_positions=1500, n_window=100, output_dim=32,
)
SYSTEM_PROMPT = "You are a helpful assistant."
_QWEN_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# Chat templates written after the renderings recorded in models.md (sections 1 and 2).
OMNI_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
AF3_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] if content['type'] == 'audio' %}<sound>{% endfor %}"
    "{% for content in message['content'] if content['type'] == 'text' %}"
    "{{ content['text'] }}{% endfor %}"
    "{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TinyModel:
    """One built-in tiny model: its id, the adapter family it goes through, and its builder
    (returning a fresh ``(model, processor)``, the model in float32 on the CPU, eval mode)."""

    model_id: str
    family: str
    description: str
    builder: Callable[[], tuple[nn.Module, Any]]


def _seeded(build_model: Callable[[], nn.Module], seed: int = TINY_SEED) -> nn.Module:
    """Run a model constructor under a fixed seed without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model()
    return model.float().eval()


def _whisper(**kwargs: Any) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, sampling_rate=SAMPLE_RATE, **kwargs)


def _set_generation_ids(model: Any, tokenizer: Any) -> None:
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None


def _build_qwen2_5_omni() -> tuple[nn.Module, Any]:
    return build_qwen2_5_omni()


#: Makes the model from its config; the default draws float32 CPU weights from the seed.
MakeModel = Callable[[type, Any], nn.Module]


def build_qwen2_5_omni(
    *, text_sizes: Mapping[str, Any] = TEXT_SIZES, audio_sizes: Mapping[str, Any] = OMNI_AUDIO,
    seed: int = TINY_SEED, vocab_size: int | None = None, make_model: MakeModel | None = None,
) -> tuple[nn.Module, Any]:
    """``tiny-qwen2_5_omni``'s model and processor, with other decoder (``TEXT_SIZES``-like)
    or audio encoder (``OMNI_AUDIO``-like) sizes and another weight seed if asked.

    ``vocab_size`` pads the embedding and LM head past the tokenizer (as real checkpoints
    do: Qwen2.5's 152064 rows for 151665 tokens); ``make_model(cls, config)`` builds the
    model instead of the seeded float32 CPU default (``benchmarks/gpu.py`` builds a
    full-size one in bfloat16 on the GPU)."""
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    named = {
        "audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>",
        "audio_eos_token": "<|audio_eos|>", "image_token": "<|IMAGE|>",
        "video_token": "<|VIDEO|>", "vision_bos_token": "<|vision_bos|>",
        "vision_eos_token": "<|vision_eos|>",
    }
    tokenizer = word_level_tokenizer(
        [*_QWEN_SPECIAL, *named.values()], pad_token="<|endoftext|>", eos_token="<|im_end|>",
        extra_special_tokens=named,
    )
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in named.items()}
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(audio_sizes),
        vision_config=dict(
            depth=1, hidden_size=32, intermediate_size=32, num_heads=4,
            out_hidden_size=text_sizes["hidden_size"], spatial_merge_size=1,
            fullatt_block_indexes=[0],
        ),
        text_config=dict(
            vocab_size=vocab_size or len(tokenizer), **text_sizes,
            rope_parameters={"mrope_section": _mrope_section(text_sizes),
                             "rope_type": "default", "rope_theta": 1e6},
        ),
        audio_token_index=ids["audio_token"], image_token_index=ids["image_token"],
        video_token_index=ids["video_token"], audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        # Not declared fields, but get_rope_index reads vision_start_token_id unconditionally.
        **{"vision_start_token_id": ids["vision_bos_token"],
           "vision_end_token_id": ids["vision_eos_token"]},
        user_token_id=tokenizer.convert_tokens_to_ids("user"),
        initializer_range=text_sizes["initializer_range"],
    )
    model = _make(Qwen2_5OmniThinkerForConditionalGeneration, config, seed, make_model)
    _set_generation_ids(model, tokenizer)
    processor = Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=_whisper(), tokenizer=tokenizer, chat_template=OMNI_CHAT_TEMPLATE,
    )
    return model, processor


def _make(cls: type, config: Any, seed: int, make_model: MakeModel | None) -> nn.Module:
    if make_model is not None:
        return make_model(cls, config).eval()
    return _seeded(lambda: cls(config), seed)


def _mrope_section(text_sizes: Mapping[str, Any]) -> list[int]:
    """Rotary frequencies per mRoPE axis (time, height, width); [1, 1, 2] at head_dim 8."""
    half = text_sizes["hidden_size"] // text_sizes["num_attention_heads"] // 2
    return [half // 4, half // 4, half - 2 * (half // 4)]


def _qwen2_text_config(vocab_size: int, pad_token_id: int,
                       text_sizes: Mapping[str, Any] = TEXT_SIZES) -> dict[str, Any]:
    return dict(model_type="qwen2", vocab_size=vocab_size, pad_token_id=pad_token_id,
                rope_theta=1e6, **text_sizes)


def _build_qwen2_audio(tokenizer: Any = None) -> tuple[nn.Module, Any]:
    """tiny-qwen2_audio; ``tokenizer`` replaces its word-level tokenizer (tests use a
    byte-level BPE one that must hold the same special tokens)."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    tokenizer = tokenizer or word_level_tokenizer(
        [*_QWEN_SPECIAL, "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"],
        pad_token="<|endoftext|>", eos_token="<|im_end|>",
    )
    config = Qwen2AudioConfig(
        text_config=_qwen2_text_config(len(tokenizer), tokenizer.pad_token_id),
        audio_config=dict(
            model_type="qwen2_audio_encoder", d_model=16, encoder_attention_heads=4,
            encoder_ffn_dim=16, encoder_layers=2, num_mel_bins=128, max_source_positions=1500,
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    model = _seeded(lambda: Qwen2AudioForConditionalGeneration(config))
    _set_generation_ids(model, tokenizer)
    # No chat_template: the processor's own default template is the real one.
    processor = Qwen2AudioProcessor(feature_extractor=_whisper(), tokenizer=tokenizer)
    return model, processor


#: Audio encoder of tiny-audioflamingo3.
AF3_AUDIO: dict[str, Any] = dict(
    hidden_size=16, num_attention_heads=4, intermediate_size=16, num_hidden_layers=2,
    num_mel_bins=128, max_source_positions=1500,
)


def _build_audioflamingo3() -> tuple[nn.Module, Any]:
    return build_audioflamingo3()


def build_audioflamingo3(
    *, text_sizes: Mapping[str, Any] = TEXT_SIZES, audio_sizes: Mapping[str, Any] = AF3_AUDIO,
    vocab_size: int | None = None, make_model: MakeModel | None = None,
) -> tuple[nn.Module, Any]:
    """``tiny-audioflamingo3``'s model and processor, or other sizes (as
    ``build_qwen2_5_omni``)."""
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
    )

    tokenizer = word_level_tokenizer(
        [*_QWEN_SPECIAL, "<sound>"], pad_token="<|endoftext|>", eos_token="<|im_end|>",
    )
    config = AudioFlamingo3Config(
        text_config=_qwen2_text_config(vocab_size or len(tokenizer), tokenizer.pad_token_id,
                                       text_sizes),
        audio_config=dict(model_type="audioflamingo3_encoder", **audio_sizes),
        audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"),
    )
    model = _make(AudioFlamingo3ForConditionalGeneration, config, TINY_SEED, make_model)
    _set_generation_ids(model, tokenizer)
    processor = AudioFlamingo3Processor(
        feature_extractor=_whisper(return_attention_mask=True), tokenizer=tokenizer,
        chat_template=AF3_CHAT_TEMPLATE,
    )
    return model, processor


def _build_voxtral() -> tuple[nn.Module, Any]:
    from transformers import VoxtralConfig, VoxtralForConditionalGeneration, VoxtralProcessor

    # Real audio framing: 30-s chunks of 3000 mel frames -> 1500 encoder positions, grouped
    # by 4 (intermediate_size = 4 x hidden_size) -> 375 tokens per chunk.
    tokenizer = tekken_tokenizer(sampling_rate=SAMPLE_RATE, frame_rate=12.5, chunk_length_s=30.0)
    config = VoxtralConfig(
        text_config=dict(
            model_type="llama", vocab_size=len(tokenizer), head_dim=8,
            pad_token_id=tokenizer.pad_token_id, rope_theta=1e8, **TEXT_SIZES,
        ),
        audio_config=dict(
            model_type="voxtral_encoder", hidden_size=16, num_attention_heads=4,
            intermediate_size=64, num_hidden_layers=2, num_mel_bins=128,
            max_source_positions=1500,
        ),
        audio_token_id=tokenizer.convert_tokens_to_ids("[AUDIO]"),
    )
    model = _seeded(lambda: VoxtralForConditionalGeneration(config))
    _set_generation_ids(model, tokenizer)
    return model, VoxtralProcessor(feature_extractor=_whisper(), tokenizer=tokenizer)


def _build_kimi_audio() -> tuple[nn.Module, Any]:
    from esn.pipeline.models.kimi_audio.tiny import build_kimi_audio

    return build_kimi_audio(TINY_SEED)


TINY_MODELS: Mapping[str, TinyModel] = MappingProxyType({
    spec.model_id: spec
    for spec in (
        TinyModel(model_id="tiny-qwen2_5_omni", family="qwen2_5_omni", builder=_build_qwen2_5_omni,
                  description="Qwen2.5-Omni thinker, 4 layers x 64 neurons, mRoPE"),
        TinyModel(model_id="tiny-audioflamingo3", family="audioflamingo3",
                  builder=_build_audioflamingo3,
                  description="Audio Flamingo 3 (Qwen2 decoder), 4 layers x 64 neurons"),
        TinyModel(model_id="tiny-qwen2_audio", family="qwen2_audio", builder=_build_qwen2_audio,
                  description="Qwen2-Audio (Qwen2 decoder), 4 layers x 64 neurons"),
        TinyModel(model_id="tiny-voxtral", family="voxtral", builder=_build_voxtral,
                  description="Voxtral (Llama decoder, tekken tokenizer), 4 layers x 64 neurons"),
        TinyModel(model_id="tiny-kimi_audio", family="kimi_audio", builder=_build_kimi_audio,
                  description="Kimi-Audio (esn's Qwen2 rebuild, two streams, stand-in speech "
                              "tokenizer), 4 layers x 64 neurons"),
    )
})


def build_tiny(model_id: str) -> tuple[nn.Module, Any]:
    """A fresh ``(model, processor)`` for a built-in tiny model id (float32, CPU, eval)."""
    return TINY_MODELS[model_id].builder()
