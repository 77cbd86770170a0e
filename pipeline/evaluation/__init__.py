"""Evaluation of a run against MOTChallenge ground truth.

- :mod:`~pipeline.evaluation.evaluate`: per-camera, combined and multi-camera scores (``python -m pipeline.evaluate``);
- :mod:`~pipeline.evaluation.metrics_mot`: sequence preparation, CLEAR-MOT and identity (IDF1) metrics;
- :mod:`~pipeline.evaluation.metrics_hota`: HOTA;
- :mod:`~pipeline.evaluation.mot_io`: reading MOTChallenge files and pairing ground truth with predictions.

Nothing is imported here: each part is imported by its own module path.
"""
