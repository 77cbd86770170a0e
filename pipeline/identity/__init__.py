"""Identity: who is who across cameras, from the tracker's boxes to global ids.

- :mod:`~pipeline.identity.stage`: the identity stage of a run (embed chosen boxes, grow tracklets, link online);
- :mod:`~pipeline.identity.record`: the one owner of tracklet id → global id, and its id events;
- :mod:`~pipeline.identity.updates`: what crosses from the embedding half to the linking half (never images);
- :mod:`~pipeline.identity.tracklets`: tracklets, one per (camera, tracker id), with their mean embeddings;
- :mod:`~pipeline.identity.gallery`: the shared gallery of global identities, searched with faiss;
- :mod:`~pipeline.identity.linker`: cross-camera linking, online against the gallery and offline by clustering;
- :mod:`~pipeline.identity.duplicates`: two tracks of one camera on one person (boxes on one foot point);
- :mod:`~pipeline.identity.ground`: overlapping views, ground maps fitted on the run's own identities, and
  tracklets of two cameras that stand on one spot;
- :mod:`~pipeline.identity.outputs`: end-of-run outputs (final ids in the track files, summaries, contact sheets);
- :mod:`~pipeline.identity.relink`: offline re-clustering of a finished run (``python -m pipeline.relink``).

Nothing is imported here: each part is imported by its own module path, so importing one stays light.
"""
