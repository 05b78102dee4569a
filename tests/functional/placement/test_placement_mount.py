"""Placement mounted on the public port: transcell tokens in front, real HTTP underneath."""

from __future__ import annotations

import uuid

import pytest
import webob

from transcell import exception
from transcell.context import RequestContext
from transcell.placement import client as placement_client
from transcell.placement.embedded import ProtectedPlacement
from transcell.wsgi.server import HTTPService, PrefixDispatcher

TOKENS = {
    "admin-token": RequestContext(user_id="u-admin", project_id="p-admin", roles=["admin"]),
    "service-token": RequestContext(user_id="u-nova", project_id="p-svc", roles=["service"]),
    "member-token": RequestContext(user_id="u-demo", project_id="p-demo", roles=["member"]),
}
MICROVERSION = {"OpenStack-API-Version": "placement 1.39"}


def fake_authenticate(req: webob.Request) -> RequestContext:
    ctx = TOKENS.get(req.headers.get("X-Auth-Token", ""))
    if ctx is None:
        raise exception.NotAuthenticated()
    return ctx


@pytest.fixture
def public(placement_app):
    return PrefixDispatcher({"/placement": ProtectedPlacement(placement_app, fake_authenticate)})


def _get(app, path: str, **headers) -> webob.Response:
    return webob.Request.blank(path, headers={**MICROVERSION, **headers}).get_response(app)


def test_version_document_needs_no_token(public):
    for path in ("/placement", "/placement/"):
        resp = _get(public, path)
        assert resp.status_int == 200
        assert resp.json["versions"][0]["max_version"] == "1.39"


def test_everything_else_needs_a_token(public):
    resp = _get(public, "/placement/resource_providers")
    assert resp.status_int == 401
    assert resp.json["errors"][0]["status"] == 401
    assert _get(public, "/placement/resource_providers",
                **{"X-Auth-Token": "forged"}).status_int == 401


def test_members_are_forbidden_whatever_roles_they_claim(public):
    resp = _get(public, "/placement/resource_providers",
                **{"X-Auth-Token": "member-token", "X-Roles": "admin"})
    assert resp.status_int == 403
    error = resp.json["errors"][0]
    assert (error["status"], error["title"]) == (403, "Forbidden")
    assert "admin or service" in error["detail"]


@pytest.mark.parametrize("token", ["admin-token", "service-token"])
def test_admin_and_service_pass(public, token):
    resp = _get(public, "/placement/resource_providers", **{"X-Auth-Token": token})
    assert resp.status_int == 200
    assert "resource_providers" in resp.json


def test_client_over_http_through_the_public_mount(public):
    service = HTTPService(public, "127.0.0.1", 0)
    service.start()
    try:
        url = f"http://127.0.0.1:{service.port}/placement"
        client = placement_client.PlacementClient(
            placement_client.HTTPTransport(url, "service-token"))
        rp = str(uuid.uuid4())
        client.ensure_resource_provider(rp, f"http-host-{rp[:8]}")
        client.set_inventory(rp, {"VCPU": {"total": 4}})
        client.set_traits(rp, ["CUSTOM_HW_GEN1"])
        consumer = str(uuid.uuid4())
        assert client.claim(consumer, {rp: {"resources": {"VCPU": 3}}}, "p", "u")
        assert client.claim(str(uuid.uuid4()), {rp: {"resources": {"VCPU": 3}}}, "p", "u") \
            is False
        assert client.get_usages(rp) == {"VCPU": 3}
        assert client.get_traits(rp) == ["CUSTOM_HW_GEN1"]
        assert client.get_provider(str(uuid.uuid4())) is None

        member = placement_client.PlacementClient(
            placement_client.HTTPTransport(url, "member-token"))
        with pytest.raises(exception.PlacementError, match="403"):
            member.get_usages(rp)
    finally:
        service.stop()
