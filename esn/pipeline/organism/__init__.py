"""The model organism: a small Qwen2.5-Omni thinker trained by esn on synthetic emotional
speech (``train_organism``), shipped as the built-in model ``esn-organism``."""

from esn.pipeline.organism.model import (
    ORGANISM_ID,
    WEIGHTS_DIR,
    build_organism,
    load_organism,
    organism_record,
    organism_revision,
)
from esn.pipeline.organism.train import (
    TrainSettings,
    evaluate,
    mlp_zeroed,
    retrain_shipped,
    train_organism,
)

__all__ = [
    "ORGANISM_ID",
    "WEIGHTS_DIR",
    "TrainSettings",
    "build_organism",
    "evaluate",
    "load_organism",
    "mlp_zeroed",
    "organism_record",
    "organism_revision",
    "retrain_shipped",
    "train_organism",
]
