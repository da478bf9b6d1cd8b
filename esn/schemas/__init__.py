"""Declared shapes: the activation-store layout and its attributes, utterance records, batches."""

from esn.schemas.batch import StatsBatch
from esn.schemas.store import (
    DEFAULT_SUMS,
    METADATA_VARIABLES,
    SCHEMA_VERSION,
    SPANS,
    STATISTICS_VARIABLES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    SUMS_DTYPES,
    ModelInfo,
    ProbeInfo,
    StoreAttributes,
    StoreLayout,
    VariableSpec,
    utterance_digest,
)
from esn.schemas.utterance import Utterance

__all__ = [
    "DEFAULT_SUMS",
    "METADATA_VARIABLES",
    "SCHEMA_VERSION",
    "SPANS",
    "STATISTICS_VARIABLES",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_PENDING",
    "SUMS_DTYPES",
    "ModelInfo",
    "ProbeInfo",
    "StatsBatch",
    "StoreAttributes",
    "StoreLayout",
    "Utterance",
    "VariableSpec",
    "utterance_digest",
]
