"""Typed configuration: YAML files live beside this loader (``configs/*.yaml``)."""

from configs.schema import (
    BgSubConfig,
    CameraConfig,
    DetectorConfig,
    OutputConfig,
    PipelineConfig,
    SourceOptions,
    TrackerConfig,
    config_from_dict,
    load_config,
)
from configs.validate import ConfigError

__all__ = [
    "BgSubConfig",
    "CameraConfig",
    "ConfigError",
    "DetectorConfig",
    "OutputConfig",
    "PipelineConfig",
    "SourceOptions",
    "TrackerConfig",
    "config_from_dict",
    "load_config",
]
