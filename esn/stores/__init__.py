"""Zarr/xarray input and output: the activation store (and later neuron-set and result files)."""

from esn.stores.activations import ActivationStore, Progress, ValidationReport, open_store

__all__ = ["ActivationStore", "Progress", "ValidationReport", "open_store"]
