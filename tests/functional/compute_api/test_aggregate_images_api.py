"""POST /os-aggregates/{id}/images (2.81), in-process: what is refused, and which
compute hosts are asked to cache which images.

Each compute host's topic on its cell's bus is served by a recorder, so the
casts the API makes are seen exactly as a host would receive them. That a host
then really fills its cache is tested in ``tests/unit/compute/test_image_cache.py``
and on a running cloud in ``tests/functional/cloud``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import compute_api_fixtures as fx
import pytest
from compute_api_fixtures import DEMO

from transcell import exception
from transcell.api.compute import aggregates as aggregates_api
from transcell.api.compute.app import ComputeApp, nova_fault
from transcell.compute.rpcapi import topic_for
from transcell.db.types import utcnow
from transcell.registry import services
from transcell.rpc.bus import get_bus

V = "/v2.1"
ROUTES = {
    f"{V}/os-aggregates": {"GET": aggregates_api.index, "POST": aggregates_api.create},
    f"{V}/os-aggregates/{{aggregate_id}}": {"GET": aggregates_api.show},
    f"{V}/os-aggregates/{{aggregate_id}}/action": {"POST": aggregates_api.action},
    f"{V}/os-aggregates/{{aggregate_id}}/images": {"POST": aggregates_api.images},
}
CIRROS = "3f1c8d2e-6b5a-4c9d-8e7f-0a1b2c3d4e5f"
UBUNTU = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"
UNKNOWN = "00000000-1111-4222-8333-444444444444"


class Images:
    def get(self, ctx, image_id: str) -> dict:
        if image_id not in (CIRROS, UBUNTU):
            raise exception.ImageNotFound(image_id=image_id)
        return {"id": image_id, "status": "active"}


class HostRecorder:
    """A compute host's RPC endpoint that only notes cache requests."""

    def __init__(self, host: str, seen: list[tuple[str, list[str]]], done: threading.Event):
        self.host, self.seen, self.done = host, seen, done

    def cache_images(self, ctx, image_ids: list[str]) -> dict:
        assert ctx.is_admin
        self.seen.append((self.host, image_ids))
        self.done.set()
        return {}


@pytest.fixture
def agg(cloud, monkeypatch) -> Iterator[fx.Cloud]:
    """cell1-host1 and cell2-host1 are up; cell1-host2 stopped reporting an hour ago."""
    cloud.app = ComputeApp({**fx.ROUTES, **ROUTES}, fx.fake_authenticate, nova_fault)
    cloud.add_compute(cloud.cell1, "cell1-host1")
    cloud.add_compute(cloud.cell2, "cell2-host1")
    stale = utcnow() - dt.timedelta(hours=1)
    cloud.add_service(cloud.cell1, "cell1-host2", seen=stale, created_at=stale)
    monkeypatch.setattr(services, "image", Images())
    cloud.seen = []  # type: ignore[attr-defined]
    cloud.done = threading.Event()  # type: ignore[attr-defined]
    served = []
    for cell, host in ((cloud.cell1, "cell1-host1"), (cloud.cell1, "cell1-host2"),
                       (cloud.cell2, "cell2-host1")):
        bus = get_bus(cell.transport_url)
        bus.serve(topic_for(host), HostRecorder(host, cloud.seen, cloud.done))
        served.append((bus, topic_for(host)))
    try:
        yield cloud
    finally:
        for bus, topic in served:
            bus.unserve(topic)


def _aggregate(cloud, name: str, hosts: tuple[str, ...]) -> int:
    agg_id = cloud.post("/os-aggregates", {"aggregate": {"name": name}}).json["aggregate"]["id"]
    for host in hosts:
        resp = cloud.post(f"/os-aggregates/{agg_id}/action", {"add_host": {"host": host}})
        assert resp.status_int == 200, resp.text
    return agg_id


def _cache(cloud, agg_id, body, version: str = "2.81", **kwargs):
    return cloud.post(f"/os-aggregates/{agg_id}/images", body, version=version, **kwargs)


def _wait_for(cloud, count: int) -> list[tuple[str, list[str]]]:
    for _ in range(100):
        if len(cloud.seen) >= count:
            break
        cloud.done.wait(0.05)
    return sorted(cloud.seen)


def _error(resp, code: int) -> str:
    assert resp.status_int == code, resp.text
    (fault,) = resp.json.values()
    assert fault["code"] == code
    return fault["message"]


def test_every_host_that_is_up_is_asked(agg):
    agg_id = _aggregate(agg, "racks", ("cell1-host1", "cell1-host2", "cell2-host1"))
    resp = _cache(agg, agg_id, {"cache": [{"id": CIRROS}, {"id": UBUNTU}]})
    assert resp.status_int == 202 and resp.body == b""
    assert _wait_for(agg, 2) == [("cell1-host1", [CIRROS, UBUNTU]),
                                 ("cell2-host1", [CIRROS, UBUNTU])]
    # the host that is down is never asked, not even late
    agg.done.wait(0.2)
    assert [h for h, _ in agg.seen].count("cell1-host2") == 0


def test_only_the_aggregates_hosts_are_asked(agg):
    agg_id = _aggregate(agg, "one", ("cell2-host1",))
    assert _cache(agg, agg_id, {"cache": [{"id": CIRROS}]}).status_int == 202
    assert _wait_for(agg, 1) == [("cell2-host1", [CIRROS])]
    empty = _aggregate(agg, "empty", ())
    assert _cache(agg, empty, {"cache": [{"id": CIRROS}]}).status_int == 202


@pytest.mark.parametrize("body", [
    {}, {"cache": []}, {"cache": "everything"}, {"cache": [{}]}, {"cache": [{"id": "nope"}]},
    {"cache": [{"id": CIRROS, "name": "cirros"}]}, {"cache": [CIRROS]},
    {"cache": [{"id": CIRROS}], "hosts": ["cell1-host1"]},
])
def test_bad_bodies_are_refused(agg, body):
    agg_id = _aggregate(agg, "racks", ("cell1-host1",))
    _error(_cache(agg, agg_id, body), 400)
    assert agg.seen == []


def test_refusals_in_novas_order_and_words(agg):
    agg_id = _aggregate(agg, "racks", ("cell1-host1",))
    assert _error(_cache(agg, agg_id, {"cache": [{"id": CIRROS}, {"id": CIRROS}]}),
                  400) == "Duplicate images in request"
    assert _error(_cache(agg, agg_id, {"cache": [{"id": CIRROS}, {"id": UNKNOWN}]}),
                  400) == f"Image {UNKNOWN} could not be found."
    # the aggregate is looked for before the images
    assert _error(_cache(agg, 4242, {"cache": [{"id": UNKNOWN}]}),
                  404) == "Aggregate 4242 could not be found."
    assert _error(_cache(agg, "x", {"cache": [{"id": CIRROS}]}), 400) == \
        "Invalid input received: id must be an integer"
    assert _error(_cache(agg, agg_id, {"cache": [{"id": CIRROS}]}, token=DEMO), 403) == \
        "Policy doesn't allow compute:aggregates:images to be performed."
    agg.done.wait(0.2)
    assert agg.seen == []


def test_below_281_there_is_no_such_resource(agg):
    agg_id = _aggregate(agg, "racks", ("cell1-host1",))
    assert _error(_cache(agg, agg_id, {"cache": [{"id": CIRROS}]}, version="2.80"), 404) == \
        "The resource could not be found."
    agg.done.wait(0.2)
    assert agg.seen == []
