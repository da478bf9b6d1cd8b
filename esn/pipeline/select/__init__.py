"""Selection: from an activation store to per-emotion neuron sets (``esn select``)."""

from esn.pipeline.select.aggregate import EmotionAggregates, aggregate_pool, build_aggregates
from esn.pipeline.select.pool import PoolOptions, choose_pool
from esn.pipeline.select.run import SelectOptions, select_neurons, store_fingerprint
from esn.pipeline.select.selectors import SELECTORS
from esn.pipeline.select.views import emotion_overlap, layer_counts, method_overlap

__all__ = [
    "SELECTORS",
    "EmotionAggregates",
    "PoolOptions",
    "SelectOptions",
    "aggregate_pool",
    "build_aggregates",
    "choose_pool",
    "emotion_overlap",
    "layer_counts",
    "method_overlap",
    "select_neurons",
    "store_fingerprint",
]
