"""Typed configuration: YAML files live beside this loader (``configs/*.yaml``)."""

from configs.schema import (
    BgSubConfig,
    CameraConfig,
    DetectorConfig,
    EmbedConfig,
    GalleryConfig,
    LinkingConfig,
    OutputConfig,
    PipelineConfig,
    SourceOptions,
    TrackerConfig,
    TransitWindow,
    config_from_dict,
    load_config,
)
from configs.validate import ConfigError

__all__ = [
    "BgSubConfig",
    "CameraConfig",
    "ConfigError",
    "DetectorConfig",
    "EmbedConfig",
    "GalleryConfig",
    "LinkingConfig",
    "OutputConfig",
    "PipelineConfig",
    "SourceOptions",
    "TrackerConfig",
    "TransitWindow",
    "config_from_dict",
    "load_config",
]
