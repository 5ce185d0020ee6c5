"""Typed options from plain config mappings: how a stage turns its config section into a dataclass.

The ``holotune`` library never imports Hydra. A stage script resolves its section of ``conf/``
to a plain dict and calls one ``from_config``; this module does the generic part: match keys to
dataclass fields by name, build nested dataclasses, turn lists into tuples, and refuse unknown or
missing keys naming the full key (``finetune.epochs``). Defaults for everything ``conf/`` sets
live only in ``conf/``: those fields have no default in the dataclasses, so a value cannot come
from two places (``tests/test_config.py`` checks both directions).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config section that does not fit its options dataclass; the message names the key."""


def build(cls: type[T], section: Mapping[str, Any], where: str, *, allow_extra: bool = False) -> T:
    """An instance of dataclass ``cls`` from ``section``, whose keys are ``cls``'s field names.

    Args:
        cls: a dataclass; fields typed as another dataclass are built from a nested mapping.
        section: the resolved config section (plain dicts and lists, e.g. ``OmegaConf.to_container``).
        where: the section's dotted name, for messages (``"finetune"``).
        allow_extra: ignore keys that are not fields (a section shared by several dataclasses).

    Raises:
        ConfigError: a key that is not a field (unless ``allow_extra``), or a field without default
            that the section lacks.
    """
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(section).__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(section) - names)
    if unknown and not allow_extra:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; {cls.__name__} takes {sorted(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name not in section:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}.{f.name}: missing (no default outside conf/)")
            continue
        values[f.name] = _convert(section[f.name], hints[f.name], f"{where}.{f.name}")
    return cls(**values)


def conf_fields(cls: type) -> list[str]:
    """The fields of ``cls`` that have no default: the ones ``conf/`` must set."""
    return [f.name for f in dataclasses.fields(cls)
            if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def _convert(value: Any, hint: Any, where: str) -> Any:
    dataclass_type = _dataclass_in(hint)
    if dataclass_type is not None and isinstance(value, Mapping):
        return build(dataclass_type, value, where)
    if isinstance(value, list) and _wants_tuple(hint):
        item = _tuple_item(hint)
        if item is not None:
            return tuple(build(item, v, f"{where}[{i}]") if isinstance(v, Mapping) else v for i, v in enumerate(value))
        return tuple(value)
    return value


def _options(hint: Any) -> tuple:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _dataclass_in(hint: Any) -> type | None:
    return next((h for h in _options(hint) if dataclasses.is_dataclass(h)), None)


def _tuple_item(hint: Any) -> type | None:
    """The dataclass ``X`` of a ``tuple[X, ...]`` hint, else ``None``."""
    for h in _options(hint):
        args = typing.get_args(h) if typing.get_origin(h) is tuple else ()
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def _wants_tuple(hint: Any) -> bool:
    return any(h is tuple or typing.get_origin(h) is tuple for h in _options(hint))


def read_params(path: str | os.PathLike = "params.yaml") -> dict:
    """The project's ``params.yaml`` (the committed composition of ``conf/``) as a plain dict."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """A deep copy of ``params`` with dotted keys set (``{"finetune.epochs": 3}``), as Hydra's ``key=value``.

    Raises:
        ConfigError: a dotted key whose parent is missing or not a mapping.
    """
    out = copy.deepcopy(dict(params))
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"{dotted}: no section {part!r} to override")
            node = node[part]
        node[leaf] = value
    return out
