"""The drain's wave limits: overall, per source host, per target host, bandwidth."""

from __future__ import annotations

from transcell.drain import model
from transcell.drain.runner import SKIP, START, WAIT, Flight, admit

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


def test_a_move_not_yet_measured_counts_at_its_flavor_size():
    """Moves started in one wave have no disk size from their saga yet: the cap must
    still count them, or one wave starts ``concurrency`` moves past the cap."""
    capped = {**SETTINGS, "concurrency": 10, "per_source_host": 10,
              "bandwidth_mib_s": 2048}
    sized = {**entry("starting", "h1"), "expected_size": GIB}
    assert admit({"a": sized}, capped, {**entry("pending", "h2"), "expected_size": GIB}
                 )[0] == START
    two = {"a": sized, "b": dict(sized)}
    assert admit(two, capped, {**entry("pending", "h2"), "expected_size": GIB})[0] == WAIT
    measured = {"a": {**sized, "disk_size": GIB // 4}, "b": {**sized, "disk_size": GIB // 4}}
    assert admit(measured, capped, {**entry("pending", "h2"), "expected_size": GIB}
                 )[0] == START


def test_a_wave_counts_the_moves_it_starts():
    flight = Flight.of([])
    settings = {**SETTINGS, "concurrency": 3, "per_source_host": 2}
    started = []
    for n, source in enumerate(["h1", "h1", "h1", "h2", "h3", "h4"]):
        candidate = {**entry("pending", source), "expected_size": GIB}
        verdict, _ = flight.verdict(settings, candidate)
        if verdict == WAIT:
            break
        if verdict == START:
            flight.add(candidate)
            started.append(n)
    assert started == [0, 1, 3]
    assert flight.moves == 3 and flight.data == 3 * GIB


def test_new_entries_expect_their_flavor_root_disk():
    assert model.new_server_entry({"host": "h", "root_gb": 3})["expected_size"] == 3 * GIB
    assert model.new_server_entry({"host": "h"})["expected_size"] == 0
