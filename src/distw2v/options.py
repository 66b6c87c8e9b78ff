"""Command-line options and REST request models generated from the config dataclasses
(config.py): each setting's name, type, default, bounds and help are declared once, there,
and reach `distw2v train --help`, `distw2v serve`, and the service's OpenAPI schema alike."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import bounds_of, bounds_text

if TYPE_CHECKING:
    from pydantic import BaseModel


# --- argparse ------------------------------------------------------------------------------


def _scalar_type(annotation: Any) -> tuple[type, tuple[Any, ...] | None]:
    """(python type, choices) of a field annotation such as `int | None` or a Literal."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _scalar_type(args[0])
    return annotation, None


def add_config_options(parser: argparse.ArgumentParser, cls: type, title: str,
                       exclude: tuple[str, ...] = ()) -> None:
    """One flag per field of `cls` (but those in `exclude`), in a group named `title`, or
    in the group its `group` metadata names."""
    groups = {title: parser.add_argument_group(title)}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) or f.name in exclude:
            continue  # a nested config gets its own group from its own class
        name = f.metadata.get("group", title)
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        group = groups[name]
        flag = "--" + f.name.replace("_", "-")
        kind, choices = _scalar_type(hints[f.name])
        help_text = f.metadata.get("help", "")
        if typing.get_origin(hints[f.name]) is tuple:  # a list setting: the flag repeats
            shown = f.metadata.get("default_text", "none")
            group.add_argument(flag, dest=f.name, action="append", default=None,
                               metavar="VALUE", help=f"{help_text} (default: {shown})")
            continue
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=f.default, help=f"{help_text} (default: %(default)s)")
        else:
            shown = f.metadata.get("default_text", "%(default)s")
            limits = bounds_text(f)  # the same bounds the dataclass enforces
            help_text += f", {limits}" if limits else ""
            group.add_argument(flag, dest=f.name, type=kind, choices=choices, default=f.default,
                               metavar=None if choices else f.name.upper(),
                               help=f"{help_text} (default: {shown})")


def config_from_args(cls: type, args: argparse.Namespace, **nested: Any) -> Any:
    """Build `cls` from parsed flags; nested config fields are passed in `nested`."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if f.name not in nested and hasattr(args, f.name)}
    return cls(**values, **nested)


# --- REST (pydantic) -------------------------------------------------------------------------


def _bounds_schema(f: dataclasses.Field[Any]) -> Callable[[dict[str, Any]], None] | None:
    """The field's bounds for OpenAPI (documented here, enforced by the dataclass), put on
    the numeric branch of an optional field's `anyOf`."""
    low, high, exclusive = bounds_of(f)
    bounds: dict[str, Any] = {}
    if low is not None:
        bounds["exclusiveMinimum" if exclusive else "minimum"] = low
    if high is not None:
        bounds["maximum"] = high
    if not bounds:
        return None

    def add(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") in ("integer", "number"):
                branch.update(bounds)

    return add


def settings_model(cls: type, name: str, exclude: tuple[str, ...] = ()) -> type[BaseModel]:
    """A pydantic model with one optional field per dataclass field (but those in `exclude`),
    unknown fields refused."""
    from pydantic import ConfigDict, Field, create_model  # the service's extra, not the CLI's

    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {
        f.name: (hints[f.name], Field(default=f.default, description=f.metadata.get("help"),
                                      json_schema_extra=_bounds_schema(f)))
        for f in dataclasses.fields(cls) if f.name not in exclude
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        name, __config__=ConfigDict(extra="forbid", strict=True), __doc__=cls.__doc__, **fields
    )
