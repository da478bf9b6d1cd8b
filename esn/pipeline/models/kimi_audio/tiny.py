"""``tiny-kimi_audio``: a random-weight Kimi-Audio, in memory or saved in the real layout.

``build_kimi_audio`` gives the model (esn's rebuild, 4 layers x 64 neurons like the other
tiny families) with a word-level tokenizer that holds Kimi's marker tokens and esn's
stand-in speech front-end. ``save_kimi_checkpoint`` writes it as Kimi-Audio-7B-Instruct's
snapshot lays itself out: ``config.json`` in the released field style (``rope_theta`` at the
top, ``architectures`` ``MoonshotKimiaForCausalLM``, the ``kimia_*`` fields), weights in
safetensors shards with an index and the checkpoint's key names, including an audio-output
(MIMO) branch of one layer that esn does not load, the tokenizer files, and
``esn_speech_frontend.json`` naming the stand-in (the one file a real snapshot lacks).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from esn.pipeline.models.kimi_audio.adapter import KimiProcessor
from esn.pipeline.models.kimi_audio.frontend import StandInFrontEnd
from esn.pipeline.models.kimi_audio.modeling import (
    KIMI_MODEL_TYPE,
    KimiAudioConfig,
    KimiAudioForText,
)
from esn.pipeline.models.kimi_audio.streams import KimiSpecialIds
from esn.pipeline.models.tiny_tokenizers import word_level_tokenizer

__all__ = ["KIMI_SPECIAL_TOKENS", "build_kimi_audio", "save_kimi_checkpoint"]

#: Kimi's special tokens in the order of its tokenizer (from id 151643 in the real one).
KIMI_SPECIAL_TOKENS = (
    "[BOS]", "[EOS]", "<|im_msg_end|>", "<|im_user_msg_start|>", "<|im_assistant_msg_start|>",
    "<|im_media_begin|>", "<|im_media_end|>", "<|im_kimia_text_blank|>",
    "<|im_kimia_text_eos|>", "<|im_kimia_user_msg_start|>", "<|im_kimia_assistant_msg_start|>",
    "<|im_kimia_speech_ct_id|>", "<|im_kimia_speech_ctd_id|>", "[PAD]",
)
CODEBOOK = 64  # speech-token ids of the stand-in (16384 in GLM-4-Voice)
ADAPTOR_INPUT = 16  # Whisper feature width (5120 in the real model)
MIMO_FROM_LAYER = 2


def _config(tokenizer: Any, text_sizes: dict[str, Any], *, token_offset: int | None,
            codebook: int, adaptor_input_dim: int) -> KimiAudioConfig:
    # Speech ids start past the text vocabulary (at 152064 in the real model).
    offset = token_offset if token_offset is not None else -(-len(tokenizer) // 8) * 8
    if offset < len(tokenizer):
        raise ValueError(f"token_offset {offset} is inside the text vocabulary")
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in KIMI_SPECIAL_TOKENS}
    fields: dict[str, Any] = dict(
        vocab_size=offset + codebook, rope_theta=1e6, rms_norm_eps=1e-6,
        pad_token_id=ids["[PAD]"], bos_token_id=ids["[BOS]"], eos_token_id=ids["[EOS]"],
        kimia_token_offset=offset, kimia_text_output_vocab=offset,
        kimia_audio_output_vocab=codebook, kimia_adaptor_input_dim=adaptor_input_dim,
        kimia_media_begin=ids["<|im_media_begin|>"], kimia_media_end=ids["<|im_media_end|>"],
        kimia_text_blank=ids["<|im_kimia_text_blank|>"],
        kimia_text_eos=ids["<|im_kimia_text_eos|>"], kimia_mimo_layers=1,
        kimia_mimo_transformer_from_layer_index=MIMO_FROM_LAYER, kimia_mimo_audiodelaytokens=6,
        num_base_tokens=ids["[BOS]"], use_whisper_feature=True,
    )
    fields.update(text_sizes)  # the caller's sizes (and norm epsilon) win
    return KimiAudioConfig(**fields)


#: Makes the model from its config; the default draws float32 CPU weights from the seed.
MakeModel = Callable[[type, Any], torch.nn.Module]


def build_kimi_audio(seed: int, *, text_sizes: dict[str, Any] | None = None,
                     token_offset: int | None = None, codebook: int = CODEBOOK,
                     adaptor_input_dim: int = ADAPTOR_INPUT,
                     make_model: MakeModel | None = None) -> tuple[Any, KimiProcessor]:
    """The tiny model (float32, CPU, eval; weights from ``seed``) and its processor; other
    decoder sizes, speech-id offset, codebook and feature width if asked (the released ones
    for a full-size random checkpoint), ``make_model(cls, config)`` building it elsewhere
    (e.g. bf16 on a GPU)."""
    from esn.pipeline.models.tiny import TEXT_SIZES

    tokenizer = word_level_tokenizer(KIMI_SPECIAL_TOKENS, pad_token="[PAD]",
                                     eos_token="<|im_kimia_text_eos|>")
    config = _config(tokenizer, dict(text_sizes or TEXT_SIZES), token_offset=token_offset,
                     codebook=codebook, adaptor_input_dim=adaptor_input_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = (make_model(KimiAudioForText, config) if make_model
                      else KimiAudioForText(config).float())
    frontend = StandInFrontEnd(codebook=codebook, feature_dim=adaptor_input_dim, seed=seed)
    ids = KimiSpecialIds.from_tokenizer(tokenizer, config.kimia_token_offset)
    return model.eval(), KimiProcessor(tokenizer, frontend, ids)


def save_kimi_checkpoint(model: KimiAudioForText, processor: KimiProcessor, folder: Path,
                         *, seed: int = 0) -> Path:
    """Write ``model`` as a Kimi-Audio snapshot folder (module docstring); the MIMO branch
    gets random weights drawn from ``seed``. Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config: Any = model.config
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    dtype = next(model.parameters()).dtype
    tensors.update({k: v.to(dtype) for k, v in _mimo_tensors(config, seed).items()})
    names = sorted(tensors)
    half = len(names) // 2
    # Named as oddly as the release's shards (model-1-of-35 ... model-36-of-36): only the
    # index says where a key lies.
    shards = {"model-1-of-1.safetensors": names[:half], "model-2-of-2.safetensors": names[half:]}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard), metadata={"format": "pt"})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    _write_json(folder / "model.safetensors.index.json",
                {"metadata": {"total_size": size}, "weight_map": weight_map})
    _write_json(folder / "config.json", _released_config(config))
    processor.save_pretrained(folder)
    return folder


def _mimo_tensors(config: KimiAudioConfig, seed: int) -> dict[str, torch.Tensor]:
    """The audio-output branch's keys: ``model.mimo_layers.N.*`` shaped like a decoder
    layer, ``model.mimo_norm.weight``, ``mimo_output.weight``."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    out: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for index in range(int(config.kimia_mimo_layers)):
            layer = Qwen2DecoderLayer(config, index)
            for key, value in layer.state_dict().items():
                out[f"model.mimo_layers.{index}.{key}"] = value.detach() + 0.01
        out["model.mimo_norm.weight"] = torch.ones(config.hidden_size)
        out["mimo_output.weight"] = torch.randn(config.vocab_size, config.hidden_size) * 0.02
    return out


def _released_config(config: KimiAudioConfig) -> dict[str, Any]:
    """The config as the released snapshot words it (transformers 4.x style, remote code)."""
    fields = config.to_dict()
    rope = fields.pop("rope_parameters", None) or {}
    for key in ("layer_types", "transformers_version", "dtype", "_name_or_path"):
        fields.pop(key, None)
    fields.update(
        architectures=["MoonshotKimiaForCausalLM"], model_type=KIMI_MODEL_TYPE,
        auto_map={"AutoConfig": "configuration_moonshot_kimia.KimiAudioConfig",
                  "AutoModel": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM",
                  "AutoModelForCausalLM": "modeling_moonshot_kimia.MoonshotKimiaForCausalLM"},
        rope_theta=rope.get("rope_theta", 1e6), torch_dtype="float32",
    )
    return fields


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
