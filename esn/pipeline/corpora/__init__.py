"""Emotional-speech corpora: loaders for published layouts, labels, sampling, summaries."""

from esn.pipeline.corpora.base import LoadResult, Problem
from esn.pipeline.corpora.cremad import load_cremad
from esn.pipeline.corpora.emotions import (
    ALIASES,
    CANONICAL_EMOTIONS,
    apply_merge,
    normalize_label,
    parse_merges,
)
from esn.pipeline.corpora.esd import load_esd
from esn.pipeline.corpora.iemocap import load_iemocap
from esn.pipeline.corpora.manifest import load_manifest
from esn.pipeline.corpora.meld import load_meld
from esn.pipeline.corpora.msp_podcast import load_msp_podcast
from esn.pipeline.corpora.ravdess import load_ravdess
from esn.pipeline.corpora.sampling import balanced_sample, class_counts
from esn.pipeline.corpora.spec import (
    CORPUS_ALIASES,
    CORPUS_LOADERS,
    CorpusListing,
    CorpusSpec,
    load_corpus,
    parse_corpus_spec,
)
from esn.pipeline.corpora.summary import CorpusSummary, format_summary, summarize_corpus
from esn.pipeline.corpora.tess import load_tess

__all__ = [
    "ALIASES",
    "CANONICAL_EMOTIONS",
    "CORPUS_ALIASES",
    "CORPUS_LOADERS",
    "CorpusListing",
    "CorpusSpec",
    "CorpusSummary",
    "LoadResult",
    "Problem",
    "apply_merge",
    "balanced_sample",
    "class_counts",
    "format_summary",
    "load_corpus",
    "load_cremad",
    "load_esd",
    "load_iemocap",
    "load_manifest",
    "load_meld",
    "load_msp_podcast",
    "load_ravdess",
    "load_tess",
    "normalize_label",
    "parse_corpus_spec",
    "parse_merges",
    "summarize_corpus",
]
