"""The pipeline steps of esn: corpora, audio, and (later) extract, select, intervene, report."""

__all__: list[str] = []
