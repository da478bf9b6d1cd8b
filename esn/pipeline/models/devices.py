"""Which device a model may be loaded onto: checked before anything loads, one-line errors.

esn runs a model on one device: the gate statistics of every layer are gathered on the
model's device (``ModelAdapter.device``), so a model split over several GPUs by
accelerate's device map (``--device auto``) is refused rather than half supported.
"""

from __future__ import annotations

import torch

from esn.errors import ModelLoadError

__all__ = ["SUPPORTED_DEVICES", "check_device"]

SUPPORTED_DEVICES = "cpu, cuda, cuda:N (a visible GPU) or mps"
# accelerate's device-map strategies: they spread one model over several devices.
_DEVICE_MAPS = frozenset({"auto", "balanced", "balanced_low_0", "sequential"})


def check_device(name: str) -> torch.device:
    """The torch device ``name`` names, if a model can be loaded onto it here.

    Raises ``ModelLoadError`` (one line, saying what is supported) for a device map such
    as ``auto``, a name torch does not know, an unsupported device type, or a GPU that is
    not visible.
    """
    if name in _DEVICE_MAPS:
        raise ModelLoadError(
            f"--device {name} is not supported: esn runs a model on one device (a model larger "
            f"than one GPU cannot be used); use {SUPPORTED_DEVICES}")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ModelLoadError(f"unknown device {name!r}: use {SUPPORTED_DEVICES}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device {name!r}: no CUDA GPU is visible here; use --device "
                                 "cpu (or run where torch.cuda.is_available())")
        if device.index is not None and device.index >= count:
            raise ModelLoadError(f"device {name!r}: only {count} CUDA GPU(s) visible "
                                 f"(cuda:0 to cuda:{count - 1})")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ModelLoadError(f"device {name!r}: MPS is not available here; use --device "
                                 "cpu")
        return device
    raise ModelLoadError(f"device {name!r}: device type {device.type!r} is not supported; use "
                         f"{SUPPORTED_DEVICES}")
