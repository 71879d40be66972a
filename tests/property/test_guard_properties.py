"""The workstation guard's hysteresis against a model: after any history of polls, the node
is held exactly while the last busy poll is less than idle_after ago; the hold's start is
the first busy poll since a poll released the node (busy polls further apart than
idle_after with none between are one hold: nothing showed the machine idle); GPU pods are
evicted only while a foreign GPU process was seen within idle_after and the policy asks."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from tests.guard_module import load_guard

guard = load_guard()
NOON = datetime(2026, 12, 1, 12, 0)
IDLE_AFTER = 60.0

polls = st.lists(
    st.tuples(st.floats(min_value=0.5, max_value=90), st.booleans(), st.booleans()),
    max_size=40,
)


@given(polls, st.booleans())
def test_the_hold_follows_the_last_busy_poll(
    history: list[tuple[float, bool, bool]], evict: bool
) -> None:
    g = guard.Guard(guard.Policy.from_json(
        {"node": "desk", "idle_after_s": IDLE_AFTER, "evict_gpu": evict}))  # fmt: skip
    session = guard.parse_session("Id=1\nName=alice\nClass=user\nActive=yes\nIdleHint=no\n")
    now, last_busy, last_gpu, since = 0.0, None, None, None
    for gap, person, gpu in history:
        now += gap
        signals = guard.Signals(
            sessions=(session,) if person else (), gpu_processes=((7, "game"),) if gpu else ()
        )
        desired = g.decide(now, NOON, signals, None)
        if person or gpu:
            if since is None:
                since = now  # a new hold: the last poll released the node, or none held it
            last_busy = now
        if gpu:
            last_gpu = now
        held = last_busy is not None and now - last_busy < IDLE_AFTER
        assert desired.hold == held
        assert desired.since == (since if held else None)
        gpu_recent = last_gpu is not None and now - last_gpu < IDLE_AFTER
        assert desired.evict_gpu == (held and evict and gpu_recent)
        if not held:
            last_busy = last_gpu = since = None
