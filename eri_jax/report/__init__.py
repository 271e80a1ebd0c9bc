"""The paper reproduction report (`python -m eri_jax.report`): the seed paper's Tables 2–6 and Figures 1
and 5–8 from this project's runs, beside the paper's numbers, with bootstrap intervals, seed spread,
paired tests and late fusion.

    report = build_report("runs", "runs/report", load_dataset_labels("hume_reaction/demo"))

Modules: rows.py (which run folders fill which row; default_rows.json), runs.py (finding and reading run
folders), labels.py (labels, Table 2, Figure 1 densities), collect.py (scoring rows), fusion.py (late
fusion weights), explanations.py (runs explained by `eri_jax.explain`), build.py (the report), markdown.py
and figures.py (rendering).
"""
from eri_jax.report.build import build_report
from eri_jax.report.collect import BootstrapSettings
from eri_jax.report.fusion import FusionWeights, apply_fusion, fit_fusion_weights
from eri_jax.report.labels import DatasetLabels, SplitLabels, load_dataset_labels
from eri_jax.report.rows import load_rows, paper_results

__all__ = ["build_report", "BootstrapSettings", "FusionWeights", "apply_fusion", "fit_fusion_weights",
           "DatasetLabels", "SplitLabels", "load_dataset_labels", "load_rows", "paper_results"]
