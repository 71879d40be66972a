"""Times as the API writes them (RFC 3339), and when an event last happened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubani.kube.fields import at, text

# Sorts before every real time: an event without one.
NEVER = datetime.min.replace(tzinfo=UTC)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: dict[str, Any]) -> str:
    """The event's last occurrence: lastTimestamp, else eventTime (events.k8s.io writers),
    else firstTimestamp, else when the object was made."""
    return (
        text(event.get("lastTimestamp"))
        or text(event.get("eventTime"))
        or text(event.get("firstTimestamp"))
        or text(at(event, "metadata").get("creationTimestamp"))
    )


def event_moment(event: dict[str, Any]) -> datetime:
    return parse_time(event_time(event)) or NEVER
