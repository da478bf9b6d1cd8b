"""Devices: a device map (``auto``), an unknown name or a GPU that is not there is refused
with one line saying what is supported, before a model loads (no GPU is needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from esn.cli import main
from esn.errors import ModelLoadError
from esn.pipeline.models import LoadOptions, check_device, load_adapter

EXAMPLE = Path(__file__).parents[3] / "examples" / "tiny" / "manifest.csv"
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")


@pytest.mark.parametrize(("device", "message"), [
    ("auto", r"^--device auto is not supported: esn runs a model on one device \(a model "
             r"larger than one GPU cannot be used\); use cpu, cuda, cuda:N \(a visible GPU\) "
             r"or mps$"),
    ("balanced", r"^--device balanced is not supported"),
    ("gpu0", r"^unknown device 'gpu0': use cpu, cuda, cuda:N \(a visible GPU\) or mps$"),
    ("cuda:x", r"^unknown device 'cuda:x'"),
    ("meta", r"^device 'meta': device type 'meta' is not supported; use cpu, cuda"),
])
def test_unusable_devices_are_one_line_errors(device: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as caught:
        check_device(device)
    assert "\n" not in str(caught.value)


@NO_GPU
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_a_gpu_that_is_not_there(device: str) -> None:
    with pytest.raises(ModelLoadError, match=rf"^device '{device}': no CUDA GPU is visible "
                                             r"here; use --device cpu"):
        check_device(device)


def test_cpu_is_usable() -> None:
    assert check_device("cpu") == torch.device("cpu")


def test_load_adapter_refuses_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import esn.pipeline.models.registry as registry

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(registry, "_load_tiny", never)
    with pytest.raises(ModelLoadError, match="^--device auto is not supported"):
        load_adapter(LoadOptions(model_id="tiny-qwen2_5_omni", device="auto"))


def test_extract_with_device_auto_is_one_line_and_writes_no_store(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    result = CliRunner().invoke(main, ["extract", "--model", "tiny-qwen2_5_omni", "--corpus",
                                       f"manifest:{EXAMPLE}", "--out", str(out),
                                       "--device", "auto"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
    assert result.stderr.strip().splitlines() == [
        "Error: --device auto is not supported: esn runs a model on one device (a model "
        "larger than one GPU cannot be used); use cpu, cuda, cuda:N (a visible GPU) or mps"]
    assert not (out / "zarr.json").exists()
