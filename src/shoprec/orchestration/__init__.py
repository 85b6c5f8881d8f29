"""Prefect side of shoprec: the DVC stages as retried tasks, run reports as UI artifacts.

The pipeline itself is ``dvc.yaml`` (driven by :mod:`shoprec.pipeline`); nothing here
re-implements a stage. The flows that compose these pieces live in ``flows/`` at the
repository root, next to ``prefect.yaml`` which schedules them.
"""
