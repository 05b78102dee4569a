"""select_destinations for moves, against real Placement: stay in the source cell when
allowed or required, cross when the flavor does not fit there or asks for other
hardware, and refuse contradictions with a reason."""

from __future__ import annotations

import uuid as uuidlib

import pytest
import scheduler_fixtures as fx

from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.scheduler.manager import SchedulerManager

CTX = RequestContext(user_id=fx.USER, project_id=fx.PROJECT, roles=["admin"])


@pytest.fixture
def cloud(sched_cloud: fx.Cloud) -> fx.Cloud:
    """cell1 hosts are small and fuller-looking; cell2 hosts are big, so without a
    preference the RAM weigher always picks cell2."""
    sched_cloud.add_host("cell1", "cell1-host1", memory_mb=8192)
    sched_cloud.add_host("cell1", "cell1-host2", memory_mb=4096)
    sched_cloud.add_host("cell2", "cell2-host1", memory_mb=32768)
    sched_cloud.add_host("cell2", "cell2-host2", memory_mb=16384)
    return sched_cloud


def move(cloud: fx.Cloud, allow: bool, source: str = "cell1") -> dict:
    return {"source_cell_uuid": cloud.cells[source].uuid, "allow_cross_cell": allow}


def select(spec: dict, claim: bool = False) -> tuple[str, list[dict]]:
    instance = str(uuidlib.uuid4())
    return instance, SchedulerManager().select_destinations(CTX, spec, instance, claim=claim)


def hosts(selections: list[dict]) -> list[str]:
    return [s["host"] for s in selections]


def test_a_build_is_unchanged_by_the_move_weigher(cloud):
    _, chosen = select(fx.spec())
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]
    assert {s["cell_uuid"] for s in chosen} == {cloud.cells["cell2"].uuid}


@pytest.mark.parametrize("allow", [False, True])
def test_a_move_stays_in_its_cell_when_a_host_there_fits(cloud, allow):
    spec = fx.spec(ignore_hosts=["cell1-host2"], move=move(cloud, allow))
    _, chosen = select(spec)
    assert hosts(chosen) == ["cell1-host1"]
    spec = fx.spec(move=move(cloud, allow))
    _, chosen = select(spec)
    assert hosts(chosen) == ["cell1-host1", "cell1-host2"]


def test_a_move_that_may_cross_crosses_when_nothing_in_its_cell_fits(cloud):
    big = fx.flavor(memory_mb=12000)
    _, chosen = select(fx.spec(big, ignore_hosts=["cell1-host1"], move=move(cloud, True)))
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]
    assert {s["cell_uuid"] for s in chosen} == {cloud.cells["cell2"].uuid}


def test_a_move_that_may_not_cross_is_refused_when_nothing_in_its_cell_fits(cloud):
    big = fx.flavor(memory_mb=12000)
    with pytest.raises(exception.NoValidHost, match="in the source cell cell1 \\(this move "
                                                    "may not cross cells\\)"):
        select(fx.spec(big, move=move(cloud, False)))


def test_a_trait_only_another_cell_has_forces_a_crossing(cloud):
    gen2 = fx.flavor(extra_specs={"trait:CUSTOM_HW_GEN2": "required"})
    _, chosen = select(fx.spec(gen2, move=move(cloud, True)))
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]
    with pytest.raises(exception.NoValidHost, match="with traits CUSTOM_HW_GEN2 in the "
                                                    "source cell cell1"):
        select(fx.spec(gen2, move=move(cloud, False)))
    # And the trait of the source cell keeps the move at home.
    gen1 = fx.flavor(extra_specs={"trait:CUSTOM_HW_GEN1": "required"})
    _, chosen = select(fx.spec(gen1, move=move(cloud, True, source="cell2")))
    assert hosts(chosen) == ["cell1-host1", "cell1-host2"]


def test_a_requested_host_in_another_cell(cloud):
    wanted = {"host": "cell2-host2"}
    with pytest.raises(exception.NoValidHost) as refused:
        select(fx.spec(requested_destination=wanted, move=move(cloud, False)))
    assert str(refused.value) == (
        "No valid host was found. Requested destination host cell2-host2 is in cell cell2, "
        "but this move may not leave its source cell cell1 (cross-cell moves are not "
        "allowed for it).")
    _, chosen = select(fx.spec(requested_destination=wanted, move=move(cloud, True)))
    assert hosts(chosen) == ["cell2-host2"]
    _, chosen = select(fx.spec(requested_destination={"host": "cell1-host2"},
                               move=move(cloud, False)))
    assert hosts(chosen) == ["cell1-host2"]
    with pytest.raises(exception.NoValidHost, match="no-such-host is not a compute host"):
        select(fx.spec(requested_destination={"host": "no-such-host"},
                       move=move(cloud, True)))


def test_a_zone_other_than_the_source_cell_contradicts_a_same_cell_move(cloud):
    with pytest.raises(exception.NoValidHost, match="Availability zone cell2 is not the "
                                                    "source cell cell1"):
        select(fx.spec(availability_zone="cell2", move=move(cloud, False)))
    _, chosen = select(fx.spec(availability_zone="cell2", move=move(cloud, True)))
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]


def test_a_negative_multiplier_drains_the_source_cell(cloud):
    CONF.set_override("cross_cell_move_weight_multiplier", -1000000.0, group="scheduler")
    _, chosen = select(fx.spec(move=move(cloud, True, source="cell2")))
    assert hosts(chosen) == ["cell1-host1", "cell1-host2"]
    # A move that may not cross still stays, whatever the multiplier.
    _, chosen = select(fx.spec(move=move(cloud, False, source="cell2")))
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]


def test_an_aggregate_override_read_from_the_api_database(cloud):
    cloud.aggregate("no-home-preference", ["cell1-host1", "cell1-host2"],
                    {"cross_cell_move_weight_multiplier": "0"})
    _, chosen = select(fx.spec(move=move(cloud, True)))
    assert hosts(chosen) == ["cell2-host1", "cell2-host2"]
    # Only hosts in the aggregate lose the preference.
    cloud.aggregate("drain-cell2", ["cell2-host1"],
                    {"cross_cell_move_weight_multiplier": "-1000000"})
    _, chosen = select(fx.spec(move=move(cloud, True, source="cell2")))
    assert hosts(chosen) == ["cell2-host2", "cell2-host1"]


def test_the_chosen_host_is_claimed_for_the_consumer(cloud):
    instance, chosen = select(fx.spec(move=move(cloud, True)), claim=True)
    held = cloud.placement.get_allocations(instance)["allocations"]
    assert list(held) == [cloud.providers["cell1-host1"]]
    assert held[cloud.providers["cell1-host1"]]["resources"]["MEMORY_MB"] == 1024
    assert chosen[0]["compute_node_uuid"] == cloud.providers["cell1-host1"]


def test_a_malformed_move_is_refused_before_placement_is_asked(cloud):
    with pytest.raises(exception.Invalid, match="unknown keys: allow_cross_cell_move"):
        select(fx.spec(move={"source_cell_uuid": cloud.cells["cell1"].uuid,
                             "allow_cross_cell_move": True}))


def test_a_same_cell_move_from_a_cell_without_hosts(cloud):
    with pytest.raises(exception.NoValidHost, match="has no compute hosts"):
        select(fx.spec(move={"source_cell_uuid": str(uuidlib.uuid4()),
                             "allow_cross_cell": False}))
