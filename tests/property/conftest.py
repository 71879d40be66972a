"""Hypothesis settings for the property tests.

These run beside the lab tests in CI, on a two-core machine that is busy booting clusters:
input generation is slowed down by that, not by the strategies, so the health checks that
time it (and per-example deadlines) would fail for the machine's load alone. What each
property asserts is unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("kubani", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("kubani")
