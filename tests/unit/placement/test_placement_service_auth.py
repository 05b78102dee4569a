"""Placement's own process behind keystonemiddleware, and the client's choice of transport."""

from __future__ import annotations

import json

import pytest
import webob
from keystoneauth1 import loading as ks_loading
from keystonemiddleware.fixture import AuthTokenFixture

from transcell import service_auth
from transcell.conf import CONF
from transcell.placement import client as placement_client
from transcell.placement.service import keystone_protected

AUTHTOKEN = {"www_authenticate_uri": "http://127.0.0.1:9/identity",
             "auth_type": "password", "auth_url": "http://127.0.0.1:9/identity"}


class FakePlacement:
    """Records what reaches Placement's noauth2 layer."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str | None]] = []

    def __call__(self, environ, start_response):
        self.seen.append({"path": environ.get("PATH_INFO"),
                          "token": environ.get("HTTP_X_AUTH_TOKEN"),
                          "roles": environ.get("HTTP_X_ROLES"),
                          "user": environ.get("HTTP_X_USER_ID")})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"versions": [{"id": "v1.0"}]}).encode()]


@pytest.fixture
def tokens():
    with AuthTokenFixture() as fixture:
        fixture.add_token_data(token_id="svc-token", user_id="placement-user",
                               project_id="service-project", role_list=["service"])
        fixture.add_token_data(token_id="member-token", user_id="someone",
                               project_id="p1", role_list=["member", "reader"])
        yield fixture


def _get(app, path: str, **headers: str) -> webob.Response:
    return webob.Request.blank(path, headers=headers).get_response(app)


def test_version_document_needs_no_token() -> None:
    inner = FakePlacement()
    resp = _get(keystone_protected(inner, AUTHTOKEN), "/")
    assert resp.status_code == 200
    assert inner.seen == [{"path": "/", "token": None, "roles": None, "user": None}]


def test_requests_without_a_valid_token_never_reach_placement() -> None:
    inner = FakePlacement()
    app = keystone_protected(inner, AUTHTOKEN)

    assert _get(app, "/resource_providers").status_code == 401
    # identity headers a client makes up are not an identity
    forged = _get(app, "/resource_providers", **{"X-Auth-Token": "admin:admin",
                                                 "X-Roles": "admin", "X-User-Id": "admin",
                                                 "X-Identity-Status": "Confirmed"})
    assert forged.status_code in (401, 503)
    assert inner.seen == []


def test_confirmed_service_token_reaches_placement_as_its_identity(tokens) -> None:
    inner = FakePlacement()
    app = keystone_protected(inner, AUTHTOKEN)

    resp = _get(app, "/resource_providers", **{"X-Auth-Token": "svc-token",
                                               "X-Roles": "admin"})

    assert resp.status_code == 200
    assert inner.seen == [{"path": "/resource_providers",
                           "token": "placement-user:service-project",
                           "roles": "service", "user": None}]


def test_confirmed_token_without_admin_or_service_role_is_forbidden(tokens) -> None:
    inner = FakePlacement()
    resp = _get(keystone_protected(inner, AUTHTOKEN), "/resource_providers",
                **{"X-Auth-Token": "member-token"})
    assert resp.status_code == 403
    assert resp.json["errors"][0]["status"] == 403
    assert inner.seen == []


@pytest.fixture
def remote_placement():
    CONF.set_override("url", "http://127.0.0.1:9/placement", group="placement")
    service_auth.reset()
    yield
    CONF.clear_override("url", group="placement")
    service_auth.reset()


def test_from_config_uses_the_noauth2_token_without_service_credentials(
        remote_placement) -> None:
    transport = placement_client.from_config().transport
    assert isinstance(transport, placement_client.HTTPTransport)
    assert transport.token == CONF.placement.auth_token


def test_from_config_uses_a_keystoneauth_session_with_service_credentials(
        remote_placement) -> None:
    CONF.register_opts(ks_loading.get_auth_plugin_conf_options("admin_token"),
                       group=service_auth.GROUP)
    CONF.set_override("auth_type", "admin_token", group=service_auth.GROUP)
    CONF.set_override("token", "from-keystone", group=service_auth.GROUP)
    CONF.set_override("endpoint", "http://127.0.0.1:9/placement", group=service_auth.GROUP)
    try:
        transport = placement_client.from_config().transport
        assert isinstance(transport, placement_client.SessionTransport)
        assert transport.url == "http://127.0.0.1:9/placement"
        assert transport.session is service_auth.session()
        assert transport.session.get_token() == "from-keystone"
    finally:
        for name in ("auth_type", "token", "endpoint"):
            CONF.clear_override(name, group=service_auth.GROUP)
