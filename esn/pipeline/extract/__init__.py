"""Extraction: probe a model on a corpus and fill an activation store (``esn extract``)."""

from esn.pipeline.extract.run import ExtractReport, ExtractRequest, extract, extract_into

__all__ = ["ExtractReport", "ExtractRequest", "extract", "extract_into"]
