"""What the Placement client sends and how it reads Placement's answers (scripted transport)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from transcell import exception
from transcell.placement import client as placement_client
from transcell.placement.client import PlacementClient, Reply

RP = "11111111-1111-1111-1111-111111111111"
CONSUMER = "22222222-2222-2222-2222-222222222222"
TARGET = "33333333-3333-3333-3333-333333333333"


def _error(status: int, code: str = "placement.undefined_code", detail: str = "nope") -> Reply:
    return Reply(status, {"errors": [{"status": status, "title": "x", "detail": detail,
                                      "code": code}]})


CONFLICT = _error(409, placement_client.CONCURRENT_UPDATE, "consumer generation conflict")


class ScriptedTransport:
    """Answers each (method, path) from a queue of replies, recording every request."""

    def __init__(self, script: dict[tuple[str, str], list[Reply]]):
        self.script = script
        self.sent: list[tuple[str, str, object, dict]] = []

    def request(self, method, path, body=None, headers=None):
        self.sent.append((method, path, body, dict(headers or {})))
        replies = self.script[(method, path.split("?")[0])]
        return replies.pop(0) if len(replies) > 1 else replies[0]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(placement_client, "_backoff", lambda attempt: None)


def test_every_request_names_the_microversion():
    transport = ScriptedTransport({("GET", f"/resource_providers/{RP}"): [Reply(404, None)]})
    assert PlacementClient(transport).get_provider(RP) is None
    assert transport.sent[0][3]["OpenStack-API-Version"] == "placement 1.39"


def test_microversion_is_the_highest_the_installed_placement_serves():
    from placement import microversion

    assert microversion.max_version_string() == placement_client.MICROVERSION


def test_allocation_candidates_query():
    path = "/allocation_candidates"
    transport = ScriptedTransport({
        ("PUT", "/traits/CUSTOM_A"): [Reply(201, None)],
        ("PUT", "/traits/CUSTOM_B"): [Reply(204, None)],
        ("GET", path): [Reply(200, {"allocation_requests": [], "provider_summaries": {}})],
    })
    PlacementClient(transport).get_allocation_candidates(
        {"VCPU": 2, "MEMORY_MB": 512, "DISK_GB": 0}, required_traits=["CUSTOM_A", "HW_CPU_X86_AVX"],
        forbidden_traits=["CUSTOM_B"], member_of=[["agg2", "agg1"], ["agg3"]],
        in_tree=RP, limit=5)
    method, sent_path, _, _ = transport.sent[-1]
    query = parse_qsl(urlsplit(sent_path).query)
    assert query == [("resources", "MEMORY_MB:512,VCPU:2"),
                     ("required", "CUSTOM_A,HW_CPU_X86_AVX,!CUSTOM_B"),
                     ("member_of", "in:agg1,agg2"), ("member_of", "in:agg3"),
                     ("in_tree", RP), ("limit", "5")]
    assert [p for m, p, _, _ in transport.sent if m == "PUT"] == ["/traits/CUSTOM_A",
                                                                   "/traits/CUSTOM_B"]


def test_set_inventory_retries_a_generation_conflict():
    path = f"/resource_providers/{RP}/inventories"
    transport = ScriptedTransport({
        ("GET", path): [Reply(200, {"resource_provider_generation": 3, "inventories": {}}),
                        Reply(200, {"resource_provider_generation": 4, "inventories": {}})],
        ("PUT", path): [_error(409, placement_client.CONCURRENT_UPDATE), Reply(200, {})],
    })
    PlacementClient(transport).set_inventory(RP, {"VCPU": {"total": 4}})
    puts = [body for m, _, body, _ in transport.sent if m == "PUT"]
    assert [b["resource_provider_generation"] for b in puts] == [3, 4]
    assert puts[-1]["inventories"] == {"VCPU": {"total": 4}}


def test_set_inventory_gives_up_when_the_provider_keeps_changing():
    path = f"/resource_providers/{RP}/inventories"
    transport = ScriptedTransport({
        ("GET", path): [Reply(200, {"resource_provider_generation": 1, "inventories": {}})],
        ("PUT", path): [_error(409, placement_client.CONCURRENT_UPDATE)],
    })
    with pytest.raises(exception.PlacementError, match="gave up"):
        PlacementClient(transport).set_inventory(RP, {"VCPU": {"total": 4}})


def test_inventory_in_use_is_an_error_with_placements_detail():
    path = f"/resource_providers/{RP}/inventories"
    transport = ScriptedTransport({
        ("GET", path): [Reply(200, {"resource_provider_generation": 1, "inventories": {}})],
        ("PUT", path): [_error(409, "placement.inventory.inuse", "VCPU is in use")],
    })
    with pytest.raises(exception.PlacementError, match="VCPU is in use"):
        PlacementClient(transport).set_inventory(RP, {"VCPU": {"total": 4}})


def test_missing_provider_is_reported_as_such():
    path = f"/resource_providers/{RP}/traits"
    transport = ScriptedTransport({("GET", path): [_error(404)]})
    with pytest.raises(exception.ResourceProviderNotFound):
        PlacementClient(transport).get_traits(RP)


def test_claim_sends_null_generation_for_a_new_consumer_and_false_on_capacity():
    transport = ScriptedTransport({
        ("GET", f"/allocations/{CONSUMER}"): [Reply(200, {"allocations": {}})],
        ("PUT", f"/allocations/{CONSUMER}"): [_error(409, detail="Unable to allocate")],
    })
    allocs = {RP: {"resources": {"VCPU": 1}, "generation": 7}}
    assert PlacementClient(transport).claim(CONSUMER, allocs, "p", "u") is False
    body = transport.sent[-1][2]
    assert body == {"allocations": {RP: {"resources": {"VCPU": 1}}}, "project_id": "p",
                    "user_id": "u", "consumer_generation": None, "consumer_type": "INSTANCE"}


def test_claim_raises_after_repeated_consumer_generation_races():
    transport = ScriptedTransport({
        ("GET", f"/allocations/{CONSUMER}"): [Reply(200, {"allocations": {}})],
        ("PUT", f"/allocations/{CONSUMER}"): [CONFLICT],
    })
    with pytest.raises(exception.AllocationConflict):
        PlacementClient(transport).claim(CONSUMER, {RP: {"resources": {"VCPU": 1}}}, "p", "u")
    assert sum(1 for m, *_ in transport.sent if m == "PUT") == placement_client.MAX_ATTEMPTS


def test_move_allocations_posts_both_consumers_with_their_generations():
    held = {"allocations": {RP: {"resources": {"VCPU": 2}, "generation": 5}},
            "project_id": "p", "user_id": "u", "consumer_generation": 4,
            "consumer_type": "INSTANCE"}
    transport = ScriptedTransport({
        ("GET", f"/allocations/{CONSUMER}"): [Reply(200, held)],
        ("GET", f"/allocations/{TARGET}"): [Reply(200, {"allocations": {}})],
        ("POST", "/allocations"): [CONFLICT, Reply(204, None)],
    })
    assert PlacementClient(transport).move_allocations(CONSUMER, TARGET) is True
    posts = [body for m, _, body, _ in transport.sent if m == "POST"]
    assert len(posts) == 2
    assert posts[-1] == {
        CONSUMER: {"allocations": {}, "project_id": "p", "user_id": "u",
                   "consumer_generation": 4, "consumer_type": "INSTANCE"},
        TARGET: {"allocations": {RP: {"resources": {"VCPU": 2}}}, "project_id": "p",
                 "user_id": "u", "consumer_generation": None, "consumer_type": "MIGRATION"},
    }


def test_http_transport_reports_an_unreachable_placement():
    transport = placement_client.HTTPTransport("http://127.0.0.1:9/placement", "t", timeout=2)
    with pytest.raises(exception.PlacementError, match="failed"):
        PlacementClient(transport).get_provider(RP)


def test_configured_url_selects_http():
    from transcell import conf

    conf.CONF.set_override("url", "http://placement.example:8778/", group="placement")
    try:
        client = placement_client.from_config()
    finally:
        conf.CONF.clear_override("url", group="placement")
    assert isinstance(client.transport, placement_client.HTTPTransport)
    assert client.transport.url == "http://placement.example:8778"
    assert client.transport.token == conf.CONF.placement.auth_token
