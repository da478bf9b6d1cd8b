"""Kimi-Audio: the rebuilt decoder against transformers' Qwen2Model, the embedding mix by hand,
the checkpoint's key layout, the two streams position by position, greedy decoding, loading
errors, and esn's interface against kimia_infer's published names."""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import PROMPTS, make_clip
from safetensors import safe_open
from transformers import Qwen2Config, Qwen2Model

from esn.errors import MissingDependencyError, ModelLoadError
from esn.pipeline.models import LoadOptions, ModelAdapter, load_adapter, resolve_family
from esn.pipeline.models.kimi_audio import KimiaInferFrontEnd
from esn.pipeline.models.kimi_audio.frontend import FRONTEND_FILE
from esn.pipeline.models.kimi_audio.tiny import save_kimi_checkpoint

ATOL = 1e-5
#: The released checkpoint's key names (one decoder layer shown; MIMO branch included).
LAYER_KEYS = {
    "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
    "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
    "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
    "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight",
}
TOP_KEYS = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.mimo_norm.weight",
    "mimo_output.weight", "model.vq_adaptor.layers.0.weight", "model.vq_adaptor.layers.0.bias",
    "model.vq_adaptor.layers.3.weight", "model.vq_adaptor.layers.3.bias",
    "model.vq_adaptor.layers.4.weight", "model.vq_adaptor.layers.4.bias",
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tiny = load_adapter(LoadOptions(model_id="tiny-kimi_audio"))
    return save_kimi_checkpoint(tiny.model, tiny.processor,
                                tmp_path_factory.mktemp("kimi") / "Kimi-Audio-tiny")


@pytest.fixture(scope="module")
def kimi(checkpoint: Path) -> ModelAdapter:
    return load_adapter(LoadOptions(model_id=str(checkpoint)))


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(str(folder / shard), framework="pt") as f:
            out.update({k: f.get_tensor(k) for k in f.keys()})  # noqa: SIM118
    return out


def test_the_checkpoint_has_the_released_layout(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "moonshot_kimia"
    assert config["architectures"] == ["MoonshotKimiaForCausalLM"]
    assert "rope_theta" in config and "rope_parameters" not in config
    for field in ("kimia_token_offset", "kimia_media_begin", "kimia_media_end",
                  "kimia_adaptor_input_dim", "kimia_mimo_layers",
                  "kimia_mimo_transformer_from_layer_index"):
        assert isinstance(config[field], int)
    layers, mimo = config["num_hidden_layers"], config["kimia_mimo_layers"]
    expected = TOP_KEYS | {f"model.layers.{i}.{k}" for i in range(layers) for k in LAYER_KEYS}
    expected |= {f"model.mimo_layers.{i}.{k}" for i in range(mimo) for k in LAYER_KEYS}
    assert set(read_tensors(checkpoint)) == expected
    assert (checkpoint / "tokenizer.json").is_file() and (checkpoint / FRONTEND_FILE).is_file()


def test_the_text_branch_loads_one_to_one_and_skips_the_mimo_branch(
        kimi: ModelAdapter, checkpoint: Path) -> None:
    stored = read_tensors(checkpoint)
    loaded = kimi.model.state_dict()
    assert set(loaded) == {k for k in stored if "mimo" not in k}
    for key, value in loaded.items():
        assert torch.equal(value, stored[key]), key


def hand_embeddings(tensors: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor],
                    eps: float) -> torch.Tensor:
    """The two-stream mix written from the formula, with the stored weights only."""
    embed = tensors["model.embed_tokens.weight"]
    audio = embed[inputs["input_ids"]]
    features = inputs["whisper_features"]
    mask = inputs["is_continuous_mask"]
    x = features @ tensors["model.vq_adaptor.layers.0.weight"].T
    x = torch.nn.functional.silu(x + tensors["model.vq_adaptor.layers.0.bias"])
    x = x @ tensors["model.vq_adaptor.layers.3.weight"].T
    x = x + tensors["model.vq_adaptor.layers.3.bias"]
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + eps) * tensors["model.vq_adaptor.layers.4.weight"]
    x = x + tensors["model.vq_adaptor.layers.4.bias"]
    mixed = torch.where(mask[..., None], (audio + x) * math.sqrt(2.0), audio)
    return mixed + embed[inputs["text_input_ids"]]


def test_the_embedding_mix_equals_the_formula(kimi: ModelAdapter, checkpoint: Path,
                                              clips: list[np.ndarray]) -> None:
    batch = kimi.build_batch(clips, PROMPTS)
    inputs = batch.inputs
    assert inputs["is_continuous_mask"].any() and (inputs["whisper_features"].abs().sum() > 0)
    with torch.no_grad():
        mine = kimi.model.model.embed_streams(inputs["input_ids"], inputs["text_input_ids"],
                                              inputs["whisper_features"],
                                              inputs["is_continuous_mask"])
    expected = hand_embeddings(read_tensors(checkpoint), inputs, kimi.model.config.rms_norm_eps)
    real = batch.attention_mask.bool()
    torch.testing.assert_close(mine[real], expected[real], atol=ATOL, rtol=0)


def test_the_decoder_equals_transformers_qwen2_on_the_same_weights(
        kimi: ModelAdapter, checkpoint: Path, clips: list[np.ndarray]) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    sizes = {k: config[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                    "num_hidden_layers", "num_attention_heads",
                                    "num_key_value_heads", "max_position_embeddings",
                                    "rms_norm_eps", "rope_theta")}
    qwen = Qwen2Model(Qwen2Config(**sizes)).eval()
    tensors = read_tensors(checkpoint)
    own = {k.removeprefix("model."): v for k, v in tensors.items()
           if k.startswith(("model.layers.", "model.norm.", "model.embed_tokens."))}
    qwen.load_state_dict(own, strict=True)
    batch = kimi.build_batch(clips, PROMPTS)
    inputs = batch.inputs
    with torch.no_grad():
        embeds = hand_embeddings(tensors, inputs, config["rms_norm_eps"])
        hidden = qwen(inputs_embeds=embeds, attention_mask=inputs["attention_mask"],
                      position_ids=inputs["position_ids"]).last_hidden_state
        expected = hidden @ tensors["lm_head.weight"].T
        logits = kimi.model(**inputs).logits
    real = batch.attention_mask.bool()
    torch.testing.assert_close(logits[real], expected[real], atol=1e-4, rtol=0)


def test_streams_position_by_position(kimi: ModelAdapter, clips: list[np.ndarray]) -> None:
    tokenizer = kimi.tokenizer
    batch = kimi.build_batch(clips, PROMPTS)
    name = tokenizer.convert_tokens_to_ids
    offset = kimi.model.config.kimia_token_offset
    blank = name("<|im_kimia_text_blank|>")
    for b, (clip, prompt) in enumerate(zip(clips, PROMPTS, strict=True)):
        n = batch.n_tokens[b]
        audio = batch.inputs["input_ids"][b, -n:].tolist()
        text = batch.inputs["text_input_ids"][b, -n:].tolist()
        question = tokenizer.encode(prompt, add_special_tokens=False)
        speech = kimi.processor.frontend.audio_tokens(clip)
        q, m = len(question), len(speech)
        assert audio == [name("<|im_kimia_user_msg_start|>"), *[blank] * q,
                         name("<|im_media_begin|>"), *[offset + t for t in speech],
                         name("<|im_media_end|>"), name("<|im_kimia_speech_ct_id|>"),
                         name("<|im_msg_end|>"), name("<|im_kimia_assistant_msg_start|>")]
        assert text == [blank, *question, *[blank] * (m + 5)]
        continuous = [False] * (q + 2) + [True] * m + [False] * 4
        assert batch.inputs["is_continuous_mask"][b, -n:].tolist() == continuous
        assert batch.audio[b, -n:].tolist() == continuous
        # Valid: the speech tokens and the question's text, nothing else, no padding.
        assert batch.valid[b, -n:].tolist() == [False, *[True] * (q + 0), False,
                                                *[True] * m, False, False, False, False]
        assert not batch.valid[b, :-n].any()
        features = kimi.processor.frontend.whisper_features(clip)
        torch.testing.assert_close(batch.inputs["whisper_features"][b, -n:][q + 2:q + 2 + m],
                                   features, atol=0, rtol=0)


def naive_greedy(kimi: ModelAdapter, clip: np.ndarray, prompt: str, steps: int) -> list[int]:
    """Kimi's own loop for one item, without a cache: the whole two-stream sequence again at
    every step, a blank appended to the audio stream and the token to the text stream."""
    batch = kimi.build_batch([clip], [prompt])
    inputs = {k: v.clone() for k, v in batch.inputs.items()}
    blank = kimi.tokenizer.convert_tokens_to_ids("<|im_kimia_text_blank|>")
    eos = kimi.tokenizer.convert_tokens_to_ids("<|im_kimia_text_eos|>")
    out: list[int] = []
    for _ in range(steps):
        with torch.no_grad():
            token = int(kimi.model(**inputs).logits[0, -1].argmax())
        if token == eos:
            break
        out.append(token)
        grow = {"input_ids": blank, "text_input_ids": token, "attention_mask": 1,
                "is_continuous_mask": False}
        for key, value in grow.items():
            inputs[key] = torch.cat([inputs[key], torch.tensor([[value]]).to(inputs[key])], 1)
        inputs["position_ids"] = torch.arange(inputs["input_ids"].shape[1])[None]
        inputs["whisper_features"] = torch.cat(
            [inputs["whisper_features"], inputs["whisper_features"][:, :1] * 0], 1)
    return out


def test_generate_equals_kimis_loop_without_a_cache(kimi: ModelAdapter,
                                                    clips: list[np.ndarray]) -> None:
    batch = kimi.build_batch(clips, PROMPTS)
    answers = kimi.generate(batch, 6)
    for clip, prompt, answer in zip(clips, PROMPTS, answers, strict=True):
        expected = kimi.decode(torch.tensor(naive_greedy(kimi, clip, prompt, 6)))
        assert answer == expected


def test_long_clips_are_heard_whole(kimi: ModelAdapter) -> None:
    clip = make_clip(61.0, 3)
    batch = kimi.build_batch([clip], ["Which emotion?"])
    assert int(batch.audio.sum()) == 2 * 375 + math.ceil(16000 / 1280)


def test_a_remote_code_tokenizer_needs_the_flag(checkpoint: Path, tmp_path: Path) -> None:
    """A snapshot like the released one (tokenizer = tokenization_kimia.py, no
    tokenizer.json) is refused without --trust-remote-code, naming it; esn's rebuild itself
    runs no remote code, so a checkpoint with a plain tokenizer needs no flag."""
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for path in checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "tokenizer.json").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_kimia.TikTokenTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="tokenization_kimia.py.*--trust-remote-code"):
        load_adapter(LoadOptions(model_id=str(folder)))
    assert not load_adapter(LoadOptions(model_id=str(checkpoint))).info.trust_remote_code


def test_without_kimia_infer_the_error_says_what_to_install(
        checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for path in checkpoint.iterdir():
        if path.name != FRONTEND_FILE:
            (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setitem(sys.modules, "kimia_infer", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match="kimia_infer") as info:
        load_adapter(LoadOptions(model_id=str(folder)))
    message = str(info.value)
    assert "pip install git+https://github.com/MoonshotAI/Kimi-Audio" in message
    assert "THUDM/glm-4-voice-tokenizer" in message


def test_the_kimia_infer_front_end_calls_its_published_interface(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names and calls as read in MoonshotAI/Kimi-Audio (kimia_infer/api/prompt_manager.py,
    models/tokenizer/glm4_tokenizer.py, models/tokenizer/whisper_Lv3/whisper.py):
    ``Glm4Tokenizer(tokenizer_path)`` with ``tokenize(speech=None, audio_path=None,
    sr=16000)`` returning ``(1, T)`` ids; ``WhisperEncoder(model_path, mel_batch_size=...)``
    with ``tokenize_waveform(audio)`` on a ``(1, samples)`` tensor returning
    ``(1, 4T, 1280)``, reshaped by the prompt manager to ``(1, T, 5120)``."""
    calls: list[tuple[str, Any]] = []

    class Glm4Tokenizer(torch.nn.Module):
        def __init__(self, tokenizer_path: str) -> None:
            super().__init__()
            calls.append(("glm4", tokenizer_path))

        def tokenize(self, speech: Any = None, audio_path: Any = None, sr: int = 16000) -> Any:
            assert audio_path is None and sr == 16000 and speech.shape[0] == 1
            return torch.arange(math.ceil(speech.shape[1] / 1280))[None]

    class WhisperEncoder(torch.nn.Module):
        def __init__(self, model_path: str, mel_batch_size: int = 40,
                     unfreeze_online_whisper_model: bool = False) -> None:
            super().__init__()
            calls.append(("whisper", model_path))

        def tokenize_waveform(self, audio: torch.Tensor,
                              kimia_whisper_clip_silence: bool = False) -> torch.Tensor:
            frames = 4 * math.ceil(audio.shape[1] / 1280)
            return torch.arange(frames * 1280, dtype=torch.float32).reshape(1, frames, 1280)

    modules = {
        "kimia_infer": types.ModuleType("kimia_infer"),
        "kimia_infer.models": types.ModuleType("kimia_infer.models"),
        "kimia_infer.models.tokenizer": types.ModuleType("kimia_infer.models.tokenizer"),
        "kimia_infer.models.tokenizer.glm4_tokenizer": types.ModuleType("g"),
        "kimia_infer.models.tokenizer.whisper_Lv3": types.ModuleType("w"),
        "kimia_infer.models.tokenizer.whisper_Lv3.whisper": types.ModuleType("ww"),
    }
    modules["kimia_infer.models.tokenizer.glm4_tokenizer"].Glm4Tokenizer = Glm4Tokenizer  # type: ignore[attr-defined]
    modules["kimia_infer.models.tokenizer.whisper_Lv3.whisper"].WhisperEncoder = WhisperEncoder  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    frontend = KimiaInferFrontEnd(tmp_path, "THUDM/glm-4-voice-tokenizer", device="cpu")
    assert calls == [("glm4", "THUDM/glm-4-voice-tokenizer"),
                     ("whisper", str(tmp_path / "whisper-large-v3"))]
    clip = make_clip(1.0, 0)
    tokens = frontend.audio_tokens(clip)
    features = frontend.whisper_features(clip)
    assert tokens == list(range(13)) and features.shape == (13, 5120)
    # Row t holds 50-Hz frames 4t..4t+3 side by side.
    assert features[1, 0] == 4 * 1280 and features[1, 1280] == 5 * 1280


def test_a_config_without_model_type_is_known_by_its_architecture(checkpoint: Path,
                                                                   tmp_path: Path) -> None:
    """Sources differ on whether the released config.json names its model_type: without
    one, its architectures say Kimi-Audio."""
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for path in checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))
    assert resolve_family(str(folder)) == ("kimi_audio", None)
    adapter = load_adapter(LoadOptions(model_id=str(folder)))
    assert adapter.family == "kimi_audio" and adapter.n_layers == config["num_hidden_layers"]
