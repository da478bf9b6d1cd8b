"""Real pretrained weights from registry packages (no model hub): OpenAI Whisper base from
its CTranslate2 file, SmolLM2-135M-Instruct from its GGUF, each converted once into an
ordinary transformers checkpoint under the user's cache folder."""

from esn.pipeline.weights.cache import cache_root
from esn.pipeline.weights.ctranslate2 import CTranslate2Model, read_ctranslate2
from esn.pipeline.weights.packages import SMOLLM2, WHISPER_BASE, WeightPackage

__all__ = ["SMOLLM2", "WHISPER_BASE", "CTranslate2Model", "WeightPackage", "cache_root",
           "read_ctranslate2"]
