"""Interventions: rewrite selected gate neurons and measure emotion recognition."""

from esn.pipeline.intervene.hooks import Intervention, intervention_hooks, scale_tables

__all__ = ["Intervention", "intervention_hooks", "scale_tables"]
