"""Build frozen dataclasses from parsed YAML, rejecting what does not fit with the dotted key path.

Errors read like ``cameras[1].roi: expected 4 numbers [x1, y1, x2, y2], got [0, 0, 10]`` or
``Non-existent config key: tracker.buffer (valid keys: kind, params)``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type, or out of range."""


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Parse YAML file ``path`` holding a mapping (empty file: {}); FileNotFoundError / ConfigError otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected a YAML text file, got binary data ({exc.reason})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of {what} keys, got {type(raw).__name__}")
    return raw


def build(cls: type, raw: Any, path: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``raw``, recursing into nested dataclasses.

    Field metadata may carry ``check``: a callable ``(value, path) -> None`` that raises ConfigError.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {type(raw).__name__} {raw!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - set(fields))
    if unknown:
        key = _join(path, unknown[0])
        raise ConfigError(f"Non-existent config key: {key} (valid keys: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key = _join(path, name)
        if name not in raw:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing")
            continue
        value = convert(hints[name], raw[name], key)
        check = field.metadata.get("check")
        if check is not None:
            check(value, key)
        kwargs[name] = value
    return cls(**kwargs)


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert ``value`` to type annotation ``tp`` or raise ConfigError naming ``path``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        concrete = [o for o in options if o is not type(None)]
        if len(concrete) == 1:  # Optional[X]: X's own, more precise message
            return convert(concrete[0], value, path)
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        names = " or ".join(_type_name(o) for o in options)
        raise ConfigError(f"{path}: expected {names}, got {type(value).__name__} {value!r}")
    if origin is typing.Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}: {value!r}")
        return tuple(convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        _, vt = get_args(tp)
        return {str(k): convert(vt, v, _join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")


def in_range(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """Field check: ``low <= value <= high`` (``low < value`` when ``low_open``)."""

    def check(value: Any, path: str) -> None:
        if value is None or isinstance(value, str):  # e.g. "auto" where a field takes a number or a keyword
            return
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and value > high
        if too_low or too_high:
            lo = "-inf" if low is None else f"{low}"
            hi = "inf" if high is None else f"{high}"
            bracket = "(" if low_open else "["
            raise ConfigError(f"{path}: expected a value in {bracket}{lo}, {hi}], got {value!r}")

    return check


def field(default: Any = dataclasses.MISSING, *, check=None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with an optional range/format check run by :func:`build`."""
    metadata = {"check": check} if check is not None else {}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))
