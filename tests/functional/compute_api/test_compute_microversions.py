"""Microversion negotiation as seen on these resources, and the route table's wiring."""

from __future__ import annotations

import compute_api_fixtures as fx

from transcell.api.compute import microversion


def test_out_of_range_is_406_with_headers_echoed(cloud):
    above = f"{microversion.MAX.major}.{microversion.MAX.minor + 1}"
    for version in ("2.0", above, "3.0"):
        resp = cloud.get("/flavors", version=version)
        assert resp.status_int == 406, version
        assert resp.json["computeFault"]["code"] == 406
        assert resp.json["computeFault"]["message"] == (
            f"Version {version} is not supported by the API. Minimum is 2.1 and maximum is "
            f"{microversion.MAX_VERSION}.")


def test_both_headers_are_echoed_on_success_and_error(cloud):
    ok = cloud.get("/os-services", version="2.11")
    assert ok.headers["OpenStack-API-Version"] == "compute 2.11"
    assert ok.headers["X-OpenStack-Nova-API-Version"] == "2.11"
    legacy = cloud.get("/flavors/none", headers={"X-OpenStack-Nova-API-Version": "2.26"})
    assert legacy.status_int == 404
    assert legacy.headers["OpenStack-API-Version"] == "compute 2.26"
    assert cloud.get("/limits").headers["X-OpenStack-Nova-API-Version"] == "2.1"
    latest = cloud.get("/limits", version="latest")
    assert latest.headers["OpenStack-API-Version"] == f"compute {microversion.MAX_VERSION}"


def test_unauthenticated_requests_are_401(cloud):
    resp = cloud.get("/flavors", token=None)
    assert resp.status_int == 401
    assert "unauthorized" in resp.json


def test_route_table_names_these_handlers():
    from transcell.api.compute.routes import ROUTES
    for path, methods in fx.ROUTES.items():
        assert {m: h.__qualname__ for m, h in ROUTES[path].items()} == \
            {m: h.__qualname__ for m, h in methods.items()}, path
        assert all(ROUTES[path][m] is h for m, h in methods.items()), path
