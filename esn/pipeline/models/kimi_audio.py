"""Kimi-Audio-7B-Instruct (moonshotai): remote code, opt-in, not runnable under transformers 5.x.

The checkpoint's ``MoonshotKimiaForCausalLM`` lives in hub remote code (``model_type``
``moonshot_kimia``) and its prompts come from MoonshotAI's ``kimia_infer`` package (two
parallel token streams, GLM-4-Voice audio tokens at 12.5 Hz plus Whisper features). Loading
checks, in order: ``trust_remote_code``, the ``kimia_infer`` and ``flash_attn`` packages, and
the transformers version, and fails with a message saying what is missing. The remote code
predates transformers 5.x (see ``KIMI_INCOMPATIBILITIES``), and esn requires 5.x, so this
adapter does not load the model yet: the way forward is to rebuild its main branch from
transformers' ``Qwen2DecoderLayer`` (models.md section 5, option c).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from esn.errors import MissingDependencyError, ModelLoadError
from esn.pipeline.models.base import LoadOptions, ModelAdapter, ProbeBatch

__all__ = ["KIMI_INCOMPATIBILITIES", "KimiAudioAdapter"]

KIMI_INSTALL = (
    "pip install git+https://github.com/MoonshotAI/Kimi-Audio (package kimia_infer; it also "
    "needs flash-attn, a CUDA GPU and the GLM-4-Voice tokenizer, THUDM/glm-4-voice-tokenizer)"
)
KIMI_INCOMPATIBILITIES = (
    "Kimi-Audio's remote code predates transformers 5.x (esn docs: models.md section 5): "
    "(1) it calls qwen2's apply_rotary_pos_emb with position_ids as a 5th argument, which 5.x "
    "takes as unsqueeze_dim (TypeError); (2) it reads config.rope_theta, which 5.x moves into "
    "config.rope_parameters (AttributeError); (3) it imports flash-attn unconditionally. "
    "It runs in a separate environment with transformers ~4.49 and flash-attn."
)


class KimiAudioAdapter(ModelAdapter):
    family: ClassVar[str] = "kimi_audio"
    model_types: ClassVar[tuple[str, ...]] = ("moonshot_kimia",)
    model_class: ClassVar[str] = "AutoModelForCausalLM"

    @classmethod
    def from_pretrained(cls, options: LoadOptions, *, commit_hash: str | None) -> ModelAdapter:
        if not options.trust_remote_code:
            raise ModelLoadError(
                f"{options.model_id!r} is Kimi-Audio, whose model code comes with the "
                "checkpoint: allow it with trust_remote_code=True (esn extract "
                "--trust-remote-code)"
            )
        if importlib.util.find_spec("kimia_infer") is None:
            raise MissingDependencyError(
                f"{options.model_id!r} is Kimi-Audio, which needs MoonshotAI's kimia_infer "
                f"package: {KIMI_INSTALL}. {KIMI_INCOMPATIBILITIES}"
            )
        if importlib.util.find_spec("flash_attn") is None:
            raise MissingDependencyError(
                f"{options.model_id!r} is Kimi-Audio, whose remote code needs flash-attn: "
                "pip install flash-attn"
            )
        import transformers

        raise ModelLoadError(
            f"{options.model_id!r} is Kimi-Audio, which esn cannot run under transformers "
            f"{transformers.__version__}. {KIMI_INCOMPATIBILITIES} esn's Kimi adapter (a "
            "rebuild on transformers' Qwen2DecoderLayer) is not implemented yet."
        )

    @property
    def decoder(self) -> Any:
        # MoonshotKimiaForCausalLM.model holds embed_tokens, layers, norm (+ mimo_* branch).
        return self.model.model

    def build_batch(self, audios: Sequence[np.ndarray], prompts: Sequence[str]) -> ProbeBatch:
        raise NotImplementedError(
            "Kimi-Audio prompts (two token streams + Whisper features) are not implemented; "
            "see KIMI_INCOMPATIBILITIES"
        )
