"""An audio-language model of real pretrained parts: Whisper base's encoder feeding
SmolLM2-135M-Instruct, in transformers' ``Qwen2AudioForConditionalGeneration``.

The class esn's Qwen2-Audio adapter already runs takes these shapes as they are: its
``Qwen2AudioEncoder`` is Whisper's encoder (80 mel bins, 6 layers, d_model 512, 8 heads,
1500 positions) plus a stride-2 average pool before the final layer norm, and its
``language_model`` is built from any text config (here SmolLM2's Llama config: 30 layers,
hidden 576, SwiGLU MLPs of 1536 gate neurons). The projector (512 -> 576) is the only part
that is not pretrained: seeded random unless trained weights are given. The processor is
``Qwen2AudioProcessor``: Whisper's 80-mel feature extractor and SmolLM2's tokenizer with
Qwen2-Audio's three audio tokens added (their embedding rows start at the mean of the
pretrained rows) and the processor's own ChatML template, which SmolLM2 was tuned on.

``save_whisper_smollm2(folder)`` writes an ordinary checkpoint directory, so that
``esn extract --model FOLDER`` takes exactly the code path of a user's Qwen2-Audio checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esn.pipeline.weights.ctranslate2 import read_ctranslate2
from esn.pipeline.weights.packages import WHISPER_BASE
from esn.pipeline.weights.smollm2 import load_smollm2
from esn.pipeline.weights.whisper import whisper_encoder_state_dict

__all__ = ["AUDIO_TOKENS", "assemble_whisper_smollm2", "save_whisper_smollm2"]

AUDIO_TOKENS = ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")


def assemble_whisper_smollm2(projector: Mapping[str, torch.Tensor] | None = None,
                             seed: int = 0) -> tuple[Any, Any]:
    """``(model, processor)``: float32 on the CPU, eval mode. ``projector``: trained
    ``multi_modal_projector`` weights (``linear.weight``, ``linear.bias``); else seeded."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    text_model, tokenizer = load_smollm2()
    tokenizer.add_special_tokens({"additional_special_tokens": list(AUDIO_TOKENS)})
    tokenizer.padding_side = "left"
    whisper = read_ctranslate2(WHISPER_BASE.paths())
    encoder = {k: torch.from_numpy(np.array(v, dtype=np.float32))
               for k, v in whisper_encoder_state_dict(whisper).items()}
    d_model = encoder["conv1.weight"].shape[0]
    text_config = text_model.config.to_dict()
    text_config["vocab_size"] = len(tokenizer)
    config = Qwen2AudioConfig(
        text_config=text_config,
        audio_config=dict(
            model_type="qwen2_audio_encoder", d_model=d_model,
            encoder_layers=sum(1 for k in encoder if k.endswith("fc1.weight")),
            encoder_attention_heads=int(whisper.variables["encoder/num_heads"]),
            encoder_ffn_dim=encoder["layers.0.fc1.weight"].shape[0],
            num_mel_bins=encoder["conv1.weight"].shape[1],
            max_source_positions=encoder["embed_positions.weight"].shape[0],
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO_TOKENS[0]),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2AudioForConditionalGeneration(config)
    model.model.audio_tower.load_state_dict(encoder)
    embed = text_model.get_input_embeddings().weight.detach()
    grown = torch.cat([embed, embed.mean(0, keepdim=True).expand(len(tokenizer) - len(embed), -1)])
    text_state = {k.removeprefix("model."): v for k, v in text_model.state_dict().items()
                  if k.startswith("model.")}
    text_state["embed_tokens.weight"] = grown
    model.model.language_model.load_state_dict(text_state)
    model.lm_head.weight.data.copy_(grown)  # SmolLM2 ties its head to the embeddings
    if projector is not None:
        model.model.multi_modal_projector.load_state_dict(dict(projector))
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(
        feature_size=encoder["conv1.weight"].shape[1]), tokenizer=tokenizer)
    return model.float().eval(), processor


def save_whisper_smollm2(folder: str | Path, projector: Mapping[str, torch.Tensor] | None = None,
                         seed: int = 0) -> Path:
    """Write the assembled model as a checkpoint directory (``save_pretrained``)."""
    folder = Path(folder)
    model, processor = assemble_whisper_smollm2(projector, seed)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
