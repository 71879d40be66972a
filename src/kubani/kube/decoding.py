"""Decoding the API's replies (msgspec). A reader that needs a few fields of a big list
passes a shape (TypedDicts of those fields): everything else is skipped while decoding, so
30,000 pods cost a fraction of the time and memory their whole objects would, and what
remains is still a plain dict in the API's own shape."""

from __future__ import annotations

from functools import cache
from typing import Any, Generic, TypeVar

import msgspec

Item = TypeVar("Item")
# The API's own kind of reply when no shape is given: any JSON object.
WHOLE: Any = dict[str, Any]


class ListPage(msgspec.Struct, Generic[Item]):
    """One page of a collection: its items and where the next page starts."""

    items: list[Item] | None = None
    metadata: dict[str, Any] = {}


class WatchEvent(msgspec.Struct):
    """One line of a watch; the object is decoded once its type is known (an ERROR carries
    a Status, not an object of the collection)."""

    type: str = ""
    object: msgspec.Raw = msgspec.Raw()  # empty when the line has none


@cache
def page_decoder(shape: Any = WHOLE) -> msgspec.json.Decoder[ListPage[Any]]:
    return msgspec.json.Decoder(ListPage[shape])


@cache
def object_decoder(shape: Any = WHOLE) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(shape)


EVENT_DECODER = msgspec.json.Decoder(WatchEvent)
STATUS_DECODER = msgspec.json.Decoder(dict[str, Any])
# Failures of decoding (not JSON, or not the expected shape) as one type.
DecodeError = msgspec.DecodeError
