"""What kind of value the models declare for an inventory variable, so that a value typed on
the command line can be read as the setting expects (``8`` as a number, ``yes`` as true)."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from kubani.models.cluster import ClusterConfig
from kubani.models.node import Node
from kubani.vocabulary import ValueKind

_MODELS: tuple[type[BaseModel], ...] = (ClusterConfig, Node)


def _unwrapped(annotation: Any) -> Any:
    """The type under Annotated[...] and Optional[...] (None is never typed on a line)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _kind_of(annotation: Any) -> ValueKind:
    annotation = _unwrapped(annotation)
    origin = get_origin(annotation) or annotation
    if origin is bool:
        return ValueKind.BOOL
    if origin is int:
        return ValueKind.INT
    if origin in (dict, list, tuple) or (
        isinstance(origin, type) and issubclass(origin, BaseModel)
    ):
        return ValueKind.JSON
    return ValueKind.STRING


def _walk(annotation: Any, rest: list[str]) -> Any | None:
    """The annotation at ``rest`` below ``annotation`` (a model's field, a mapping's value)."""
    for part in rest:
        annotation = _unwrapped(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return None
            annotation = field.annotation
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    return annotation


def declared_kind(path: list[str]) -> ValueKind | None:
    """The kind the cluster or node model declares at a key path, or None where neither
    knows the key (the user's own variables, role variables)."""
    for model in _MODELS:
        field = model.model_fields.get(path[0])
        if field is not None:
            annotation = _walk(field.annotation, path[1:])
            return None if annotation is None else _kind_of(annotation)
    return None
