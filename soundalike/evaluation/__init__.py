"""Evaluation: retrieval metrics, baselines (MFCC statistics, the untrained encoder), reports and plots.

``evaluate(catalog, out)`` is what ``soundalike evaluate`` runs.
"""

from soundalike.evaluation.run import EvalConfig, evaluate

__all__ = ["EvalConfig", "evaluate"]
