"""The drain's wave limits: overall, per source host, per target host, bandwidth."""

from __future__ import annotations

from transcell.drain import model
from transcell.drain.runner import SKIP, START, WAIT, admit

SETTINGS = {**model.DEFAULTS, "concurrency": 3, "per_source_host": 2, "per_target_host": 1}
GIB = 1024 ** 3


def entry(state: str, source: str, dest: str | None = None, disk: int | None = None) -> dict:
    return {**model.new_server_entry({"host": source}), "state": state, "dest_host": dest,
            "disk_size": disk}


def test_nothing_flying_starts():
    assert admit({"a": entry("pending", "h1")}, SETTINGS, entry("pending", "h1")) == (START, [])


def test_overall_concurrency_waits():
    servers = {str(n): entry("moving", f"h{n}") for n in range(3)}
    assert admit(servers, SETTINGS, entry("pending", "h9"))[0] == WAIT


def test_per_source_host_skips_only_that_host():
    servers = {"a": entry("moving", "h1"), "b": entry("starting", "h1")}
    assert admit(servers, SETTINGS, entry("pending", "h1"))[0] == SKIP
    assert admit(servers, SETTINGS, entry("pending", "h2"))[0] == START


def test_full_target_hosts_are_avoided():
    servers = {"a": entry("moving", "h1", "t1"), "b": entry("confirming", "h2", "t2"),
               "c": entry("moved", "h3", "t3")}
    assert admit(servers, SETTINGS, entry("pending", "h4")) == (START, ["t1", "t2"])


def test_bandwidth_cap_counts_the_disks_in_flight_but_one_move_always_runs():
    capped = {**SETTINGS, "bandwidth_mib_s": 1024}
    assert admit({}, capped, entry("pending", "h1"))[0] == START
    one = {"a": entry("moving", "h1", disk=GIB)}
    assert admit(one, capped, entry("pending", "h2"))[0] == WAIT
    small = {"a": entry("moving", "h1", disk=GIB // 2)}
    assert admit(small, capped, entry("pending", "h2"))[0] == START
