"""load_adapter: tiny ids, checkpoint directories, dtype policy, and clear errors for ids,
paths and families that cannot be loaded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAMILIES, PROMPTS

from esn.errors import EsnError, MissingDependencyError, ModelLoadError
from esn.pipeline.models import (
    ADAPTERS,
    MODEL_TYPES,
    TINY_MODELS,
    LoadOptions,
    build_tiny,
    load_adapter,
    resolve_family,
)
from esn.pipeline.models.voxtral import require_mistral_common


def write_config(folder: Path, **config: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_registry_covers_every_family() -> None:
    assert set(ADAPTERS) == {"qwen2_5_omni", "audioflamingo3", "qwen2_audio", "voxtral",
                             "kimi_audio"}
    assert MODEL_TYPES["qwen2_5_omni_thinker"] == MODEL_TYPES["qwen2_5_omni"] == "qwen2_5_omni"
    assert MODEL_TYPES["moonshot_kimia"] == "kimi_audio"
    assert set(TINY_MODELS) == set(FAMILIES)
    assert {spec.family for spec in TINY_MODELS.values()} == set(ADAPTERS)  # one each


def test_tiny_ids_load_offline(tiny_id: str) -> None:
    adapter = load_adapter(LoadOptions(model_id=tiny_id))
    family = TINY_MODELS[tiny_id].family
    assert isinstance(adapter, ADAPTERS[family])
    assert adapter.info.id == tiny_id and adapter.info.adapter == family
    assert adapter.info.dtype == "float32" and adapter.info.revision.startswith("builtin-seed")
    assert not adapter.model.training
    assert resolve_family(tiny_id) == (family, None)


def test_saved_tiny_model_loads_from_its_directory(tiny_id: str, tmp_path: Path,
                                                  clips: list[np.ndarray]) -> None:
    """The checkpoint path (from_pretrained + AutoProcessor) gives the same model."""
    model, processor = build_tiny(tiny_id)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = load_adapter(LoadOptions(model_id=str(tmp_path)))
    reference = load_adapter(LoadOptions(model_id=tiny_id))
    assert type(loaded) is type(reference) and type(loaded.processor) is type(reference.processor)
    assert loaded.info.id == str(tmp_path) and loaded.info.revision == ""
    a = loaded.build_batch(clips[:2], PROMPTS[:2])
    b = reference.build_batch(clips[:2], PROMPTS[:2])
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.valid, b.valid)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(**a.inputs).logits,
                                   reference.model(**b.inputs).logits, atol=0, rtol=0)


def test_a_damaged_weights_file_is_one_clear_error(tiny_id: str, tmp_path: Path) -> None:
    """An empty (truncated) safetensors file: a ModelLoadError naming the model, for every
    family, not safetensors' own exception."""
    model, processor = build_tiny(tiny_id)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    for weights in tmp_path.glob("*.safetensors"):
        weights.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"cannot load model '{tmp_path}'"):
        load_adapter(LoadOptions(model_id=str(tmp_path)))


def test_dtype_policy(tmp_path: Path) -> None:
    model, processor = build_tiny("tiny-qwen2_audio")
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    # "auto" keeps the checkpoint's dtype, but half precision becomes float32 on the CPU.
    assert load_adapter(LoadOptions(model_id=str(tmp_path))).info.dtype == "float32"
    explicit = load_adapter(LoadOptions(model_id=str(tmp_path), dtype="bfloat16"))
    assert explicit.info.dtype == "bfloat16" and explicit.dtype == torch.bfloat16
    tiny = load_adapter(LoadOptions(model_id="tiny-qwen2_audio", dtype="bfloat16"))
    assert tiny.info.dtype == "bfloat16"
    with pytest.raises(ModelLoadError, match="dtype"):
        LoadOptions(model_id="tiny-qwen2_audio", dtype="int8")


def test_unknown_hub_id_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError, match="esn-test/no-such-model") as info:
        load_adapter(LoadOptions(model_id="esn-test/no-such-model"))
    assert "HF_HUB_OFFLINE" in str(info.value)
    assert isinstance(info.value, EsnError) and isinstance(info.value, ValueError)


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"
    with pytest.raises(ModelLoadError, match="no such directory"):
        load_adapter(LoadOptions(model_id=str(missing)))
    with pytest.raises(ModelLoadError, match="cannot find model"):  # a folder without config
        load_adapter(LoadOptions(model_id=str(tmp_path)))


def test_unsupported_model_type(tmp_path: Path) -> None:
    folder = write_config(tmp_path / "bert", model_type="bert")
    with pytest.raises(ModelLoadError, match="'bert'.*supported: .*qwen2_audio"):
        load_adapter(LoadOptions(model_id=str(folder)))


def test_voxtral_without_mistral_common(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mistral_common", None)
    with pytest.raises(MissingDependencyError, match="pip install mistral-common"):
        require_mistral_common()


def test_attention_implementation_is_applied(clips: list[np.ndarray]) -> None:
    sdpa = load_adapter(LoadOptions(model_id="tiny-qwen2_audio"))
    eager = load_adapter(LoadOptions(model_id="tiny-qwen2_audio", attn_implementation="eager"))
    assert eager.model.get_decoder().config._attn_implementation == "eager"
    batch = sdpa.build_batch(clips, PROMPTS)
    real = batch.attention_mask.bool()
    with torch.no_grad():
        torch.testing.assert_close(eager.model(**batch.inputs).logits[real],
                                   sdpa.model(**batch.inputs).logits[real], atol=1e-5, rtol=0)
