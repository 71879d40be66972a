"""Hypothesis strategies for valid and invalid Kubani inputs."""

from __future__ import annotations

import ipaddress
import string

from hypothesis import strategies as st

_ALNUM = string.ascii_lowercase + string.digits

dns_labels = st.builds(
    lambda first, middle, last: (first + middle + last)[:63] if middle or last else first,
    st.sampled_from(_ALNUM),
    st.text(_ALNUM + "-", max_size=20),
    st.sampled_from(["", *_ALNUM]),
).filter(lambda s: not s.endswith("-"))

tailnet_v4 = st.integers(0, 2**22 - 1).map(lambda n: str(ipaddress.IPv4Network("100.64.0.0/10")[n]))
outside_v4 = st.one_of(
    st.integers(0, 2**24 - 1).map(lambda n: str(ipaddress.IPv4Network("10.0.0.0/8")[n])),
    st.integers(0, 2**16 - 1).map(lambda n: str(ipaddress.IPv4Network("192.168.0.0/16")[n])),
)

label_names = st.builds(
    lambda a, mid, b: a + mid + b,
    st.sampled_from(string.ascii_letters + string.digits),
    st.text(string.ascii_letters + string.digits + "-_.", max_size=10),
    st.sampled_from(string.ascii_letters + string.digits),
)
label_keys = st.one_of(label_names, st.builds(lambda p, n: f"{p}.io/{n}", dns_labels, label_names))
label_values = st.one_of(st.just(""), label_names)

cpu = st.one_of(st.integers(1, 64).map(str), st.integers(1, 4000).map(lambda m: f"{m}m"))
memory = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 512), st.sampled_from(["Mi", "Gi"]))
effects = st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])
taints = st.builds(
    lambda k, v, e: f"{k}={v}:{e}" if v else f"{k}:{e}", label_keys, label_values, effects
)


@st.composite
def node_vars(draw: st.DrawFn) -> dict[str, object]:
    data: dict[str, object] = {"tailscale_ip": draw(tailnet_v4)}
    if draw(st.booleans()):
        data["reserved_cpu"] = draw(cpu)
    if draw(st.booleans()):
        data["reserved_memory"] = draw(memory)
    if draw(st.booleans()):
        data["gpu"] = True
    labels = draw(st.dictionaries(label_keys, label_values, max_size=3))
    if labels:
        data["node_labels"] = labels
    taint_list = draw(
        st.lists(
            taints,
            max_size=2,
            unique_by=lambda t: (t.split("=")[0].split(":")[0], t.rsplit(":", 1)[1]),
        )
    )
    if taint_list:
        data["node_taints"] = taint_list
    return data


# One field broken per example: (field, bad value).
bad_fields = st.one_of(
    st.tuples(
        st.just("hostname"),
        st.sampled_from(["UPPER", "under_score", "-lead", "trail-", "a" * 64, "dots.in.name", ""]),
    ),
    st.tuples(st.just("tailscale_ip"), st.sampled_from(["300.1.1.1", "host", "", "1.2.3"])),
    st.tuples(st.just("reserved_cpu"), st.sampled_from(["1Gi", "-1", "lots", "1.2.3", "2 cores"])),
    st.tuples(st.just("reserved_memory"), st.sampled_from(["512m", "1GB", "-1Gi", "many"])),
    st.tuples(st.just("gpu"), st.sampled_from(["yes", 1, "true"])),
    st.tuples(
        st.just("node_labels"),
        st.sampled_from([{"bad key": "v"}, {"k": "bad value"}, {"/k": "v"}, {"k": "x" * 64}]),
    ),
    st.tuples(st.just("node_taints"), st.sampled_from([["k=v:Never"], ["k=v"], [":NoSchedule"]])),
    st.tuples(st.just("ansible_port"), st.sampled_from([0, 70000, "22"])),
)
