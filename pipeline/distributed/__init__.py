"""The Ray engine: camera-group workers, one identity service, sinks in the driver.

    driver (pipeline.distributed.engine)          sinks: tracks, MOT, crops, identity events, final outputs
      ├─ CameraWorker actors (worker.py)          read → detect → track → choose crops → embed, per camera group
      │     └─ TrackletUpdates ─────────────┐     spans, boxes and a few embeddings per frame; never images
      └─ IdentityService actor (service.py) ◄┘    tracklets + gallery + linker + identity record; emits id events,
                                                  checkpoints itself and resumes from the checkpoint on restart

``python -m pipeline.run --engine ray`` runs it (:func:`pipeline.distributed.engine.run_ray`); the
single-process engine (:mod:`pipeline.engine`) stays the default and both write the same outputs.
"""
