"""A build asked onto a host and/or hypervisor (2.74), against real Placement: it lands
there, wherever the weighers would have sent it, or fails with NoValidHost."""

from __future__ import annotations

import uuid as uuidlib

import pytest
import scheduler_fixtures as fx

from transcell import exception
from transcell.context import RequestContext
from transcell.scheduler import filters
from transcell.scheduler.host_state import all_host_states
from transcell.scheduler.manager import SchedulerManager

CTX = RequestContext(user_id=fx.USER, project_id=fx.PROJECT, roles=["admin"])


@pytest.fixture
def cloud(sched_cloud: fx.Cloud) -> fx.Cloud:
    """Left to the weighers, a build goes to cell2-host1, the host with most memory."""
    sched_cloud.add_host("cell1", "cell1-host1", memory_mb=4096)
    sched_cloud.add_host("cell1", "cell1-host2", memory_mb=8192)
    sched_cloud.add_host("cell2", "cell2-host1", memory_mb=32768)
    sched_cloud.add_host("cell2", "cell2-down", memory_mb=65536, up=False)
    return sched_cloud


def select(**extra) -> list[str]:
    chosen = SchedulerManager().select_destinations(
        CTX, fx.spec(**extra), str(uuidlib.uuid4()), claim=False)
    return [s["host"] for s in chosen]


def test_left_alone_the_build_goes_where_the_weighers_say(cloud):
    assert select()[0] == "cell2-host1"


@pytest.mark.parametrize("destination", [
    {"host": "cell1-host1", "node": None},
    {"host": None, "node": "cell1-host1"},
    {"host": "cell1-host1", "node": "cell1-host1"},
])
def test_a_requested_destination_is_the_only_choice(cloud, destination):
    # no alternates either: a reschedule may not leave the requested host
    assert select(requested_destination=destination) == ["cell1-host1"]


def test_the_zone_must_agree_with_the_host(cloud):
    assert select(requested_destination={"host": "cell1-host2", "node": None},
                  availability_zone="cell1") == ["cell1-host2"]
    with pytest.raises(exception.NoValidHost):
        select(requested_destination={"host": "cell1-host2", "node": None},
               availability_zone="cell2")
    with pytest.raises(exception.NoValidHost):
        select(requested_destination={"host": None, "node": "cell1-host2"},
               availability_zone="cell2")


def test_a_host_that_cannot_take_the_build_is_no_valid_host(cloud):
    with pytest.raises(exception.NoValidHost):
        select(requested_destination={"host": "cell2-down", "node": None})
    # a hypervisor that is not the host's
    with pytest.raises(exception.NoValidHost):
        select(requested_destination={"host": "cell1-host1", "node": "cell1-host2"})
    # too small for the flavor
    with pytest.raises(exception.NoValidHost):
        select(requested_destination={"host": "cell1-host1", "node": None},
               flavor=fx.flavor(memory_mb=6144))


def test_the_filter_checks_host_and_node_each(cloud):
    states = {s.host: s for s in all_host_states().values()}
    host = states["cell1-host1"]
    for destination, passes in (({"host": "cell1-host1"}, True),
                                ({"node": "cell1-host1"}, True),
                                ({"host": "cell1-host1", "node": "cell1-host1"}, True),
                                ({"host": "cell1-host2"}, False),
                                ({"node": "cell1-host2"}, False),
                                ({"host": "cell1-host1", "node": "other"}, False),
                                (None, True)):
        spec = {"requested_destination": destination}
        assert filters.requested_host_filter(host, spec) is passes, destination
