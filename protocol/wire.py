"""The one mapping layer between typed messages and JSON: snake_case fields, camelCase keys.

A message class is a frozen dataclass whose field types are drawn from: str, int, float, bool,
`Literal[...]` of strings, another message dataclass, `tuple[X, ...]` (a JSON array), `Any`
(free JSON), each optionally `X | None` (an optional field, absent on the wire when None), with
constraints and a description as `Annotated` metadata (protocol.fields). `shape_of` reads that
once per class; protocol.schema turns shapes into JSON Schema, `to_wire` and `from_wire` turn
objects into JSON values and back. `from_wire` trusts its input: validate first.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from protocol.fields import Items, Range, Text


def camel(name: str) -> str:
    """snake_case -> camelCase: from_ms -> fromMs, uptime_s -> uptimeS, top_k -> topK."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class Shape:
    """What one field holds. `kind` is one of str, int, float, bool, Literal (see `values`),
    tuple (see `item`), Any, or a message dataclass."""

    kind: Any
    constraints: tuple[Range | Text | Items, ...] = ()
    description: str | None = None
    values: tuple[str, ...] = ()
    item: Shape | None = None


@dataclass(frozen=True)
class WireField:
    name: str  # the Python attribute
    key: str  # the camelCase JSON key
    shape: Shape
    required: bool  # False: may be absent on the wire (None or a default in Python)
    default: Any  # dataclasses.MISSING when required


def shape_of(hint: Any) -> tuple[Shape, bool]:
    """(shape, optional) of a resolved type hint; optional means `X | None`."""
    constraints: list[Range | Text | Items] = []
    description = None
    optional = False
    while True:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            for meta in hint.__metadata__:
                if isinstance(meta, str):
                    description = meta
                elif isinstance(meta, (Range, Text, Items)):
                    constraints.append(meta)
                else:
                    raise TypeError(f"unknown field metadata {meta!r}")
            hint = hint.__origin__
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(members) != 1:
                raise TypeError(f"only `X | None` unions are supported, not {hint}")
            optional = True
            hint = members[0]
        else:
            break
    if typing.get_origin(hint) is Literal:
        return Shape(Literal, tuple(constraints), description, typing.get_args(hint)), optional
    if typing.get_origin(hint) is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        if ellipsis is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, not {hint}")
        item, _ = shape_of(item_hint)
        return Shape(tuple, tuple(constraints), description, item=item), optional
    if hint in (str, int, float, bool) or hint is Any or dataclasses.is_dataclass(hint):
        return Shape(hint, tuple(constraints), description), optional
    raise TypeError(f"unsupported field type {hint!r}")


@functools.cache
def wire_fields(cls: type) -> tuple[WireField, ...]:
    """The fields of a message class, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        shape, optional = shape_of(hints[f.name])
        has_default = f.default is not dataclasses.MISSING
        if optional and not has_default:
            raise TypeError(f"{cls.__name__}.{f.name}: optional fields need a default (None)")
        out.append(WireField(f.name, camel(f.name), shape, required=not has_default,
                             default=f.default))
    return tuple(out)


def to_wire(obj: Any) -> Any:
    """A message object as JSON values; None-valued optional fields are left out.

    Only None is left out: 0, "" and False are values (a progress of 0% is sent).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in wire_fields(type(obj)):
            value = getattr(obj, f.name)
            if value is not None:
                out[f.key] = to_wire(value)
        return out
    if isinstance(obj, (tuple, list)):
        return [to_wire(v) for v in obj]
    return obj


def from_wire(cls: type, value: dict[str, Any]) -> Any:
    """A validated JSON object as an instance of `cls`; unknown keys are ignored."""
    kwargs = {}
    for f in wire_fields(cls):
        if f.key in value:
            kwargs[f.name] = _convert(f.shape, value[f.key])
    return cls(**kwargs)


def _convert(shape: Shape, value: Any) -> Any:
    if value is None:
        return None
    if shape.kind is int:
        return int(value)  # JSON Schema's integer includes 2.0
    if shape.kind is tuple:
        return tuple(_convert(shape.item, v) for v in value)
    if dataclasses.is_dataclass(shape.kind):
        return from_wire(shape.kind, value)
    return value
