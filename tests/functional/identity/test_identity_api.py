"""The identity API through WSGI: discovery, tokens, lookups, Keystone errors."""

from __future__ import annotations

from typing import Any

import pytest
import webob

from transcell.api.identity import make_app
from transcell.identity.catalog import default_catalog
from transcell.identity.store import IdentityStore, bootstrap


@pytest.fixture
def store(tmp_path) -> IdentityStore:
    return bootstrap(str(tmp_path))


@pytest.fixture
def app(store):
    return make_app(store, default_catalog)


def call(app, path: str, method: str = "GET", body: Any = None,
         token: str | None = None, **headers: str) -> webob.Response:
    """Request the app as mounted at /identity on http://cloud:8774."""
    req = webob.Request.blank(path, method=method, base_url="http://cloud:8774/identity")
    if body is not None:
        req.json_body = body
    if token:
        req.headers["X-Auth-Token"] = token
    for name, value in headers.items():
        req.headers[name.replace("_", "-")] = value
    return req.get_response(app)


def password_auth(user: str, password: str, project: str | None = None,
                  **scope: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
    auth.update(scope)
    return {"auth": auth}


def login(app, store, user: str = "demo", project: str | None = "demo") -> str:
    resp = call(app, "/v3/auth/tokens", "POST",
                password_auth(user, store.user_by_name(user).password, project))
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def assert_keystone_error(resp: webob.Response, code: int, title: str) -> None:
    assert resp.status_code == code
    error = resp.json["error"]
    assert (error["code"], error["title"]) == (code, title)
    assert error["message"]


def test_version_documents_need_no_token(app):
    root = call(app, "/")
    assert root.status_code == 300
    (entry,) = root.json["versions"]["values"]
    assert entry["id"] == "v3.14" and entry["status"] == "stable"
    assert entry["links"] == [{"rel": "self", "href": "http://cloud:8774/identity/v3/"}]
    assert entry["media-types"]
    for path in ("/v3", "/v3/"):
        resp = call(app, path)
        assert resp.status_code == 200
        assert resp.json == {"version": entry}


def test_password_login_returns_a_scoped_token_with_catalog(app, store):
    resp = call(app, "/v3/auth/tokens", "POST",
                password_auth("demo", store.user_by_name("demo").password, "demo"))
    assert resp.status_code == 201
    assert resp.headers["X-Subject-Token"]
    token = resp.json["token"]
    assert token["user"]["name"] == "demo"
    assert token["project"] == {"id": store.project_by_name("demo").id, "name": "demo",
                                "domain": {"id": "default", "name": "Default"}}
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]
    assert token["methods"] == ["password"]
    compute = next(s for s in token["catalog"] if s["type"] == "compute")
    assert {e["interface"] for e in compute["endpoints"]} == {"public", "internal", "admin"}
    for endpoint in compute["endpoints"]:
        assert endpoint["url"] == "http://cloud:8774/compute/v2.1"
        assert endpoint["region"] == endpoint["region_id"] == "RegionOne"
        assert endpoint["id"]
    assert {s["type"] for s in token["catalog"]} >= {"identity", "compute", "image",
                                                     "network"}


def test_login_by_ids(app, store):
    demo = store.user_by_name("demo")
    project = store.project_by_name("demo")
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"id": demo.id, "password": demo.password}}},
        "scope": {"project": {"id": project.id}}}}
    resp = call(app, "/v3/auth/tokens", "POST", body)
    assert resp.status_code == 201
    assert resp.json["token"]["project"]["id"] == project.id


def test_unscoped_login_lands_in_the_default_project(app, store):
    resp = call(app, "/v3/auth/tokens", "POST",
                password_auth("reader", store.user_by_name("reader").password))
    assert resp.status_code == 201
    assert resp.json["token"]["project"]["name"] == "demo"
    assert [r["name"] for r in resp.json["token"]["roles"]] == ["reader"]


def test_wrong_password_is_401_in_keystone_envelope(app, store):
    resp = call(app, "/v3/auth/tokens", "POST", password_auth("demo", "wrong", "demo"))
    assert_keystone_error(resp, 401, "Unauthorized")
    assert resp.headers["WWW-Authenticate"] == 'Keystone uri="http://cloud:8774/identity"'
    assert "X-Subject-Token" not in resp.headers


def test_project_without_a_role_is_401(app, store):
    resp = call(app, "/v3/auth/tokens", "POST",
                password_auth("demo", store.user_by_name("demo").password, "alt"))
    assert_keystone_error(resp, 401, "Unauthorized")


@pytest.mark.parametrize("body", [
    {}, {"auth": {}}, {"auth": {"identity": {"methods": "password"}}},
    {"auth": {"identity": {"methods": ["password"]}}},
    {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo"}}}}},
    {"auth": {"identity": {"methods": ["password"],
                           "password": {"user": {"name": "demo", "password": "x"}}}}},
])
def test_malformed_login_is_400(app, body):
    assert_keystone_error(call(app, "/v3/auth/tokens", "POST", body), 400, "Bad Request")


def test_unparseable_body_is_400(app):
    req = webob.Request.blank("/v3/auth/tokens", method="POST", body=b"{not json")
    assert_keystone_error(req.get_response(app), 400, "Bad Request")


def test_token_method_rescopes(app, store):
    admin_token = login(app, store, "admin", "admin")
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": admin_token}},
                     "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    resp = call(app, "/v3/auth/tokens", "POST", body)
    assert resp.status_code == 201
    assert resp.json["token"]["methods"] == ["token"]
    assert resp.headers["X-Subject-Token"] != admin_token
    body["auth"]["identity"]["token"]["id"] = "forged"
    assert_keystone_error(call(app, "/v3/auth/tokens", "POST", body), 401, "Unauthorized")


def test_validate_check_and_revoke(app, store):
    demo_token = login(app, store)
    admin_token = login(app, store, "admin", "admin")

    resp = call(app, "/v3/auth/tokens", token=admin_token, X_Subject_Token=demo_token)
    assert resp.status_code == 200
    assert resp.headers["X-Subject-Token"] == demo_token
    assert resp.json["token"]["user"]["name"] == "demo"
    assert resp.json["token"]["catalog"]
    head = call(app, "/v3/auth/tokens", "HEAD", token=admin_token, X_Subject_Token=demo_token)
    assert head.status_code == 200

    # a user may revoke its own token
    assert call(app, "/v3/auth/tokens", "DELETE", token=demo_token,
                X_Subject_Token=demo_token).status_code == 204

    resp = call(app, "/v3/auth/tokens", token=admin_token, X_Subject_Token=demo_token)
    assert_keystone_error(resp, 404, "Not Found")
    assert resp.json["error"]["message"] == f"Could not find token: {demo_token}."
    assert_keystone_error(call(app, "/v3/projects", token=demo_token), 401, "Unauthorized")


def test_a_user_may_not_validate_someone_elses_token(app, store):
    demo_token = login(app, store)
    alt_token = login(app, store, "alt", "alt")
    resp = call(app, "/v3/auth/tokens", token=alt_token, X_Subject_Token=demo_token)
    assert_keystone_error(resp, 403, "Forbidden")


def test_everything_but_discovery_and_login_needs_a_token(app):
    for path in ("/v3/auth/tokens", "/v3/projects", "/v3/auth/catalog", "/v3/roles"):
        assert_keystone_error(call(app, path), 401, "Unauthorized")


def test_projects_admin_sees_all_others_their_own(app, store):
    admin_token = login(app, store, "admin", "admin")
    demo_token = login(app, store)
    names = {p["name"] for p in call(app, "/v3/projects", token=admin_token).json["projects"]}
    assert names == {"admin", "demo", "alt", "service"}
    projects = call(app, "/v3/projects", token=demo_token).json["projects"]
    assert [p["name"] for p in projects] == ["demo"]
    assert projects[0]["links"]["self"].startswith("http://cloud:8774/identity/v3/projects/")
    filtered = call(app, "/v3/projects?name=alt", token=admin_token).json["projects"]
    assert [p["name"] for p in filtered] == ["alt"]


def test_project_and_user_lookups(app, store):
    demo_token = login(app, store)
    demo = store.user_by_name("demo")
    demo_project = store.project_by_name("demo")
    alt_project = store.project_by_name("alt")

    resp = call(app, f"/v3/projects/{demo_project.id}", token=demo_token)
    assert resp.json["project"]["name"] == "demo"
    assert_keystone_error(call(app, f"/v3/projects/{alt_project.id}", token=demo_token),
                          403, "Forbidden")
    assert_keystone_error(call(app, "/v3/projects/nope", token=demo_token), 404, "Not Found")

    user = call(app, f"/v3/users/{demo.id}", token=demo_token).json["user"]
    assert (user["name"], user["domain_id"]) == ("demo", "default")
    alt = store.user_by_name("alt")
    assert_keystone_error(call(app, f"/v3/users/{alt.id}", token=demo_token),
                          403, "Forbidden")
    users = call(app, "/v3/users?name=demo", token=demo_token).json["users"]
    assert [u["id"] for u in users] == [demo.id]


def test_auth_catalog_projects_and_roles(app, store):
    reader_token = login(app, store, "reader", "demo")
    catalog = call(app, "/v3/auth/catalog", token=reader_token).json["catalog"]
    assert "compute" in {s["type"] for s in catalog}
    projects = call(app, "/v3/auth/projects", token=reader_token).json["projects"]
    assert [p["name"] for p in projects] == ["demo"]
    roles = call(app, "/v3/roles", token=reader_token).json["roles"]
    assert {r["name"] for r in roles} == {"admin", "manager", "member", "reader", "service"}
    domain = call(app, "/v3/domains/default", token=reader_token).json["domain"]
    assert domain["name"] == "Default"


def test_unknown_path_and_method(app, store):
    token = login(app, store)
    assert_keystone_error(call(app, "/v3/nothing", token=token), 404, "Not Found")
    assert_keystone_error(call(app, "/v3/projects", "PUT", {}, token=token),
                          405, "Method Not Allowed")
