"""The report: findings first, then figures, tables and a plainly stated verdict from
``esn intervene`` results folders, in one self-contained HTML page plus PNG and SVG figures
and ``summary.json``."""

from esn.pipeline.report.build import build_report, report_findings
from esn.pipeline.report.results import ResultsFolder, Study, group_studies, read_results

__all__ = ["ResultsFolder", "Study", "build_report", "group_studies", "read_results",
           "report_findings"]
