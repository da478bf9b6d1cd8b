"""The built-in tiny models: seeded and fresh, real classes, probe vocabulary, real-shaped
chat templates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esn.pipeline.models import TINY_MODELS, build_tiny
from esn.pipeline.models.tiny_tokenizers import PROBE_WORDS

# The renderings recorded in models.md (sections 1-3) for one audio item and this text.
QUESTION = "What emotion is the speaker expressing?"
RENDERED = {
    "tiny-qwen2_5_omni": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<|audio_bos|><|AUDIO|><|audio_eos|>" + QUESTION + "<|im_end|>\n"
    "<|im_start|>assistant\n",
    "tiny-audioflamingo3": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n<sound>" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n",
    "tiny-qwen2_audio": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" + QUESTION
    + "<|im_end|>\n<|im_start|>assistant\n",
}
REAL_CLASSES = {
    "tiny-qwen2_5_omni": ("Qwen2_5OmniThinkerForConditionalGeneration", "Qwen2_5OmniProcessor"),
    "tiny-audioflamingo3": ("AudioFlamingo3ForConditionalGeneration", "AudioFlamingo3Processor"),
    "tiny-qwen2_audio": ("Qwen2AudioForConditionalGeneration", "Qwen2AudioProcessor"),
    "tiny-voxtral": ("VoxtralForConditionalGeneration", "VoxtralProcessor"),
    "tiny-kimi_audio": ("KimiAudioForText", "KimiProcessor"),  # esn's rebuild (no HF class)
}


def test_builds_are_seeded_fresh_and_leave_the_rng_alone(tiny_id: str) -> None:
    state = torch.random.get_rng_state()
    first, processor = build_tiny(tiny_id)
    assert torch.equal(torch.random.get_rng_state(), state)
    second, other = build_tiny(tiny_id)
    assert first is not second and processor is not other
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_real_classes_and_tiny_sizes(tiny_id: str) -> None:
    model, processor = build_tiny(tiny_id)
    assert (type(model).__name__, type(processor).__name__) == REAL_CLASSES[tiny_id]
    decoder = model.get_decoder()
    assert 2 <= len(decoder.layers) <= 4 and decoder.config.hidden_size <= 64
    assert decoder.config.vocab_size >= len(processor.tokenizer)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert tiny_id.removeprefix("tiny-") == TINY_MODELS[tiny_id].family


def test_tokenizer_knows_the_probe_words(tiny_id: str) -> None:
    tokenizer = build_tiny(tiny_id)[1].tokenizer
    text = " ".join(PROBE_WORDS)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    assert unk not in ids
    assert tokenizer.decode(ids).split() == text.split()


@pytest.mark.parametrize("tiny_id", sorted(RENDERED))
def test_chat_template_renders_like_the_real_one(tiny_id: str) -> None:
    processor = build_tiny(tiny_id)[1]
    conversation = [{"role": "user", "content": [
        {"type": "audio", "audio": np.zeros(1600, np.float32)},
        {"type": "text", "text": QUESTION},
    ]}]
    assert processor.apply_chat_template(conversation, add_generation_prompt=True) == (
        RENDERED[tiny_id]
    )


def test_voxtral_prompt_is_mistral_instruct_format(clips: list[np.ndarray]) -> None:
    from esn.pipeline.models import LoadOptions, load_adapter

    pytest.importorskip("mistral_common")
    adapter = load_adapter(LoadOptions(model_id="tiny-voxtral"))
    batch = adapter.build_batch(clips[:1], [QUESTION])
    names = adapter.tokenizer.convert_ids_to_tokens(batch.input_ids[0].tolist())
    assert names[:3] == ["<s>", "[INST]", "[BEGIN_AUDIO]"] and names[-1] == "[/INST]"
    assert names[3:378] == ["[AUDIO]"] * 375 and names[378] != "[AUDIO]"
    assert adapter.decode(batch.input_ids[0, 378:]) == QUESTION
