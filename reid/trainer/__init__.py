"""The unsupervised ReID trainer behind ``python -m reid.train`` (the entry point, :mod:`reid.train`).

- :mod:`~reid.trainer.config`: the run's configuration (frozen dataclass, YAML, CLI flags);
- :mod:`~reid.trainer.data`: label-free training crops and a labelled split for scoring;
- :mod:`~reid.trainer.model`: the model a run starts from (architecture, head, ``--init`` weights);
- :mod:`~reid.trainer.run`: the run's torch settings, state and records (checkpoint, metrics, resume);
- :mod:`~reid.trainer.pseudo_labels`, :mod:`~reid.trainer.tracklet_labels`: pseudo-labels from crops or tracklets;
- :mod:`~reid.trainer.memory`, :mod:`~reid.trainer.losses`: memory banks and losses;
- :mod:`~reid.trainer.patch`, :mod:`~reid.trainer.occlusion`: PAUL's patch branch and synthetic occluders;
- :mod:`~reid.trainer.model_check`, :mod:`~reid.trainer.check`: the label-free model check and when it runs.

Clustering shared with the pipeline's linker (:mod:`reid.cluster`, :mod:`reid.agglomerative`) and the link
calibration (:mod:`reid.calibration`, :mod:`reid.camera_centring`) stay in :mod:`reid`. Nothing is imported here.
"""
