"""Per-neuron statistics across utterances: grouped aggregates and group tests (``esn stats``)."""

from esn.pipeline.stats.acoustics import (
    DESCRIPTORS,
    AcousticsReport,
    describe_audio,
    measure_acoustics,
    read_acoustics,
    write_acoustics,
)
from esn.pipeline.stats.correction import CORRECTIONS, adjust
from esn.pipeline.stats.groups import GROUPING_VARIABLES, Grouping, make_grouping
from esn.pipeline.stats.measures import MEASURES, grouped_aggregates, utterance_values
from esn.pipeline.stats.run import (
    StatsOptions,
    StatsPlan,
    build_stats,
    compute_stats,
    format_top,
    read_stats,
    top_neurons,
    write_stats,
)

__all__ = [
    "CORRECTIONS",
    "DESCRIPTORS",
    "GROUPING_VARIABLES",
    "AcousticsReport",
    "MEASURES",
    "Grouping",
    "StatsOptions",
    "StatsPlan",
    "adjust",
    "build_stats",
    "compute_stats",
    "describe_audio",
    "format_top",
    "grouped_aggregates",
    "make_grouping",
    "measure_acoustics",
    "read_acoustics",
    "read_stats",
    "top_neurons",
    "utterance_values",
    "write_acoustics",
    "write_stats",
]
