"""The identity admin API: projects, users, roles and grants, made and removed by an admin.

In-process tests pin Keystone's status codes and error envelope, that a refused
or invalid request changes nothing, and that what was made survives a restart;
the end-to-end test gives a new account access to a running cloud (compute,
quotas, image, network, volume, placement) and takes it away again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cloudclients import LAYOUT, CloudProcess, start_cloud, stop_cloud
from test_identity_api import assert_keystone_error, call, login, password_auth

from transcell.api.identity import make_app
from transcell.identity.catalog import default_catalog
from transcell.identity.store import FILE_NAME, IdentityStore, bootstrap

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(tmp_path) -> IdentityStore:
    return bootstrap(str(tmp_path))


@pytest.fixture
def app(store):
    return make_app(store, default_catalog)


@pytest.fixture
def admin(app, store) -> str:
    return login(app, store, "admin", "admin")


def directory_state(app, token: str) -> dict[str, Any]:
    """Everything the admin API can change, as an admin reads it."""
    state = {}
    for path in ("/v3/projects", "/v3/users", "/v3/roles", "/v3/role_assignments"):
        resp = call(app, path, token=token)
        assert resp.status_code == 200, resp.text
        state[path] = resp.json
    return state


def make_account(app, admin: str, name: str = "tenant1", role: str = "member"
                 ) -> tuple[dict, dict]:
    """A project, a user with a password and the role on it; (project, user)."""
    project = call(app, "/v3/projects", "POST", {"project": {
        "name": name, "description": f"{name} project", "domain_id": "default"}}, admin)
    assert project.status_code == 201, project.text
    user = call(app, "/v3/users", "POST", {"user": {
        "name": f"{name}-user", "password": PASSWORD, "domain_id": "default",
        "default_project_id": project.json["project"]["id"], "email": "u@example.org"}},
        admin)
    assert user.status_code == 201, user.text
    role_id = _role_id(app, admin, role)
    grant = call(app, f"/v3/projects/{project.json['project']['id']}/users/"
                 f"{user.json['user']['id']}/roles/{role_id}", "PUT", token=admin)
    assert grant.status_code == 204, grant.text
    return project.json["project"], user.json["user"]


def _role_id(app, token: str, name: str) -> str:
    resp = call(app, f"/v3/roles?name={name}", token=token)
    (role,) = resp.json["roles"]
    return role["id"]


def _login(app, user: str, project: str):
    return call(app, "/v3/auth/tokens", "POST", password_auth(user, PASSWORD, project))


# -- in process --------------------------------------------------------------------------

def test_created_entities_look_like_keystones(app, admin):
    project, user = make_account(app, admin)
    assert project["name"] == "tenant1" and project["domain_id"] == "default"
    assert project["enabled"] is True and project["description"] == "tenant1 project"
    assert project["links"]["self"].endswith(f"/identity/v3/projects/{project['id']}")
    assert user["name"] == "tenant1-user" and user["default_project_id"] == project["id"]
    assert user["email"] == "u@example.org" and "password" not in user
    shown = call(app, f"/v3/projects/{project['id']}", token=admin)
    assert shown.json["project"] == project
    grants = call(app, f"/v3/projects/{project['id']}/users/{user['id']}/roles",
                  token=admin)
    assert [r["name"] for r in grants.json["roles"]] == ["member"]
    assignments = call(app, f"/v3/role_assignments?scope.project.id={project['id']}",
                       token=admin).json["role_assignments"]
    assert [(a["user"]["id"], a["role"]["id"]) for a in assignments] == [
        (user["id"], grants.json["roles"][0]["id"])]
    role_path = (f"/v3/projects/{project['id']}/users/{user['id']}/roles/"
                 f"{grants.json['roles'][0]['id']}")
    assert call(app, role_path, "HEAD", token=admin).status_code == 204
    # granting twice is no error and adds nothing
    assert call(app, role_path, "PUT", token=admin).status_code == 204
    assert len(call(app, f"/v3/role_assignments?user.id={user['id']}",
                    token=admin).json["role_assignments"]) == 1


def test_the_new_user_logs_in_with_the_implied_roles(app, admin):
    project, user = make_account(app, admin)
    resp = _login(app, "tenant1-user", "tenant1")
    assert resp.status_code == 201, resp.text
    token = resp.json["token"]
    assert token["project"]["id"] == project["id"] and token["user"]["id"] == user["id"]
    assert sorted(r["name"] for r in token["roles"]) == ["member", "reader"]
    # unscoped: the default project
    unscoped = call(app, "/v3/auth/tokens", "POST", password_auth("tenant1-user", PASSWORD))
    assert unscoped.json["token"]["project"]["id"] == project["id"]
    assert_keystone_error(_login(app, "tenant1-user", "demo"), 401, "Unauthorized")
    assert_keystone_error(call(app, "/v3/auth/tokens", "POST", password_auth(
        "tenant1-user", "wrong", "tenant1")), 401, "Unauthorized")


def test_a_created_role_can_be_granted(app, admin):
    resp = call(app, "/v3/roles", "POST", {"role": {"name": "auditor"}}, admin)
    assert resp.status_code == 201, resp.text
    role = resp.json["role"]
    assert call(app, f"/v3/roles/{role['id']}", token=admin).json["role"] == role
    project, user = make_account(app, admin, role="auditor")
    token = _login(app, "tenant1-user", "tenant1").json["token"]
    assert [r["name"] for r in token["roles"]] == ["auditor"]


@pytest.mark.parametrize("persona", ["demo", "reader", "manager"])
def test_only_an_admin_may_change_the_directory(app, store, admin, persona):
    project, user = make_account(app, admin)
    member = _role_id(app, admin, "member")
    token = login(app, store, persona, "demo")
    before = directory_state(app, admin)
    demo_project = store.project_by_name("demo").id
    me = store.user_by_name(persona).id
    admin_role = _role_id(app, admin, "admin")
    for path, method, body in (
            ("/v3/projects", "POST", {"project": {"name": "mine"}}),
            ("/v3/users", "POST", {"user": {"name": "mine", "password": "x"}}),
            ("/v3/roles", "POST", {"role": {"name": "mine"}}),
            (f"/v3/projects/{demo_project}/users/{me}/roles/{admin_role}", "PUT", None),
            (f"/v3/projects/{project['id']}/users/{user['id']}/roles/{member}", "DELETE",
             None),
            (f"/v3/users/{user['id']}", "DELETE", None),
            (f"/v3/projects/{project['id']}", "DELETE", None)):
        resp = call(app, path, method, body, token)
        assert_keystone_error(resp, 403, "Forbidden")
        assert "identity:" in resp.json["error"]["message"]
    for path in ("/v3/role_assignments",
                 f"/v3/projects/{project['id']}/users/{user['id']}/roles"):
        assert_keystone_error(call(app, path, token=token), 403, "Forbidden")
    assert directory_state(app, admin) == before


def test_duplicates_conflict(app, admin):
    make_account(app, admin)
    before = directory_state(app, admin)
    for path, body in (("/v3/projects", {"project": {"name": "tenant1"}}),
                       ("/v3/users", {"user": {"name": "tenant1-user", "password": "x"}}),
                       ("/v3/users", {"user": {"name": "admin"}}),
                       ("/v3/roles", {"role": {"name": "member"}})):
        resp = call(app, path, "POST", body, admin)
        assert_keystone_error(resp, 409, "Conflict")
        assert "Conflict occurred attempting to store" in resp.json["error"]["message"]
    assert directory_state(app, admin) == before


@pytest.mark.parametrize("path,body", [
    ("/v3/projects", None),
    ("/v3/projects", []),
    ("/v3/projects", {}),
    ("/v3/projects", {"project": "p"}),
    ("/v3/projects", {"project": {}}),
    ("/v3/projects", {"project": {"name": 5}}),
    ("/v3/projects", {"project": {"name": ""}}),
    ("/v3/projects", {"project": {"name": "   "}}),
    ("/v3/projects", {"project": {"name": "x" * 65}}),
    ("/v3/projects", {"project": {"name": "p", "enabled": "yes"}}),
    ("/v3/projects", {"project": {"name": "p", "description": 7}}),
    ("/v3/projects", {"project": {"name": "p", "domain_id": 1}}),
    ("/v3/projects", {"project": {"name": "p", "is_domain": True}}),
    ("/v3/projects", {"project": {"name": "p", "parent_id": "elsewhere"}}),
    ("/v3/users", {"user": {"password": "x"}}),
    ("/v3/users", {"user": {"name": ["u"]}}),
    ("/v3/users", {"user": {"name": "u", "password": 5}}),
    ("/v3/users", {"user": {"name": "u", "enabled": 0}}),
    ("/v3/users", {"user": {"name": "u", "email": {}}}),
    ("/v3/users", {"user": {"name": "u", "default_project_id": 3}}),
    ("/v3/roles", {"role": {}}),
    ("/v3/roles", {"role": {"name": None}}),
])
def test_bad_input_is_400_and_changes_nothing(app, admin, path, body):
    before = directory_state(app, admin)
    assert_keystone_error(call(app, path, "POST", body, admin), 400, "Bad Request")
    assert directory_state(app, admin) == before


def test_unknown_references_are_404_and_change_nothing(app, store, admin):
    project, user = make_account(app, admin)
    member = _role_id(app, admin, "member")
    before = directory_state(app, admin)
    missing = "0" * 32
    for path, method, body in (
            ("/v3/projects", "POST", {"project": {"name": "p", "domain_id": missing}}),
            ("/v3/users", "POST", {"user": {"name": "u", "domain_id": missing}}),
            (f"/v3/projects/{missing}/users/{user['id']}/roles/{member}", "PUT", None),
            (f"/v3/projects/{project['id']}/users/{missing}/roles/{member}", "PUT", None),
            (f"/v3/projects/{project['id']}/users/{user['id']}/roles/{missing}", "PUT", None),
            (f"/v3/projects/{project['id']}/users/{user['id']}/roles/"
             f"{_role_id(app, admin, 'reader')}", "DELETE", None),
            (f"/v3/projects/{project['id']}/users/{user['id']}/roles/"
             f"{_role_id(app, admin, 'reader')}", "GET", None),
            (f"/v3/users/{missing}", "DELETE", None),
            (f"/v3/projects/{missing}", "DELETE", None),
            (f"/v3/roles/{missing}", "GET", None)):
        resp = call(app, path, method, body, admin)
        assert_keystone_error(resp, 404, "Not Found")
    assert directory_state(app, admin) == before


def test_the_embedded_clouds_own_accounts_are_immutable(app, store, admin):
    before = directory_state(app, admin)
    demo = store.user_by_name("demo")
    demo_project = store.project_by_name("demo")
    member = store.role_by_name("member")
    for path in (f"/v3/users/{demo.id}", f"/v3/projects/{demo_project.id}",
                 f"/v3/projects/{demo_project.id}/users/{demo.id}/roles/{member.id}"):
        resp = call(app, path, "DELETE", token=admin)
        assert_keystone_error(resp, 403, "Forbidden")
        assert "immutable" in resp.json["error"]["message"]
    assert directory_state(app, admin) == before


def test_deleting_takes_access_away_at_once(app, store, admin):
    project, user = make_account(app, admin)
    token = _login(app, "tenant1-user", "tenant1").headers["X-Subject-Token"]
    assert call(app, "/v3/auth/projects", token=token).status_code == 200
    # a grant taken away: the token stops working, and so does logging in there
    member = _role_id(app, admin, "member")
    grant = f"/v3/projects/{project['id']}/users/{user['id']}/roles/{member}"
    assert call(app, grant, "DELETE", token=admin).status_code == 204
    assert_keystone_error(call(app, "/v3/auth/projects", token=token), 401, "Unauthorized")
    assert_keystone_error(call(app, "/v3/auth/tokens", token=admin,
                               X_Subject_Token=token), 404, "Not Found")
    assert_keystone_error(_login(app, "tenant1-user", "tenant1"), 401, "Unauthorized")
    # given back, then the user deleted
    assert call(app, grant, "PUT", token=admin).status_code == 204
    token = _login(app, "tenant1-user", "tenant1").headers["X-Subject-Token"]
    assert call(app, f"/v3/users/{user['id']}", "DELETE", token=admin).status_code == 204
    assert_keystone_error(call(app, "/v3/auth/projects", token=token), 401, "Unauthorized")
    assert_keystone_error(call(app, f"/v3/users/{user['id']}", token=admin), 404,
                          "Not Found")
    assert call(app, f"/v3/role_assignments?scope.project.id={project['id']}",
                token=admin).json["role_assignments"] == []
    # the project deleted: gone from lists, and a second delete is a 404
    assert call(app, f"/v3/projects/{project['id']}", "DELETE", token=admin).status_code == 204
    names = [p["name"] for p in call(app, "/v3/projects", token=admin).json["projects"]]
    assert "tenant1" not in names
    assert_keystone_error(call(app, f"/v3/projects/{project['id']}", "DELETE", token=admin),
                          404, "Not Found")


def test_deleting_a_project_removes_every_grant_on_it(app, admin):
    project, user = make_account(app, admin)
    token = _login(app, "tenant1-user", "tenant1").headers["X-Subject-Token"]
    assert call(app, f"/v3/projects/{project['id']}", "DELETE", token=admin).status_code == 204
    assert_keystone_error(call(app, "/v3/auth/projects", token=token), 401, "Unauthorized")
    assert call(app, f"/v3/role_assignments?user.id={user['id']}",
                token=admin).json["role_assignments"] == []
    # the user is still there, with nowhere to log in to
    assert_keystone_error(call(app, "/v3/auth/tokens", "POST",
                               password_auth("tenant1-user", PASSWORD)), 401, "Unauthorized")


def test_accounts_survive_a_restart_and_keep_only_a_hash(app, store, admin, tmp_path):
    project, user = make_account(app, admin)
    with open(os.path.join(str(tmp_path), FILE_NAME), encoding="utf-8") as fh:
        raw = fh.read()
    assert PASSWORD not in raw
    stored = next(u for u in json.loads(raw)["users"] if u["id"] == user["id"])
    assert stored["password_hash"].startswith("pbkdf2-sha256$")
    # a new process: bootstrap completes the file and keeps what the API added
    again = make_app(bootstrap(str(tmp_path)), default_catalog)
    resp = _login(again, "tenant1-user", "tenant1")
    assert resp.status_code == 201, resp.text
    assert resp.json["token"]["project"]["id"] == project["id"]


def test_another_process_sees_the_new_account(app, admin, tmp_path):
    """Two API processes on one state directory: what one adds, the other serves."""
    other = make_app(IdentityStore.load(str(tmp_path)), default_catalog)
    other_admin = login(other, IdentityStore.load(str(tmp_path)), "admin", "admin")
    make_account(app, admin)
    resp = _login(other, "tenant1-user", "tenant1")
    assert resp.status_code == 201, resp.text
    token = resp.headers["X-Subject-Token"]
    assert call(other, "/v3/auth/projects", token=token).status_code == 200
    # and a duplicate made through the other one still conflicts
    assert_keystone_error(call(other, "/v3/projects", "POST", {"project": {
        "name": "tenant1"}}, other_admin), 409, "Conflict")


# -- end to end --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[CloudProcess]:
    if LAYOUT != "embedded":
        pytest.skip("the embedded identity's admin API; the distributed layout runs Keystone")
    state_dir = str(tmp_path_factory.mktemp("identity-admin"))
    proc = start_cloud(state_dir)
    try:
        yield CloudProcess(state_dir, proc.port)
    finally:
        stop_cloud(proc)


def _token(cloud: CloudProcess, user: str, project: str) -> requests.Response:
    return requests.post(f"{cloud.base_url}/identity/v3/auth/tokens", timeout=30,
                         json=password_auth(user, PASSWORD, project))


def _as(cloud: CloudProcess, token: str, method: str, path: str, **kwargs: Any
        ) -> requests.Response:
    return cloud.request(method, path, token=token, **kwargs)


def test_a_new_account_works_on_every_service_until_deleted(cloud):
    admin = cloud.token("transcell-admin")
    identity = "/identity/v3"
    project = _as(cloud, admin, "POST", f"{identity}/projects", json={"project": {
        "name": "e2e", "domain_id": "default"}})
    assert project.status_code == 201, project.text
    project_id = project.json()["project"]["id"]
    user = _as(cloud, admin, "POST", f"{identity}/users", json={"user": {
        "name": "e2e-user", "password": PASSWORD, "domain_id": "default"}})
    assert user.status_code == 201, user.text
    user_id = user.json()["user"]["id"]
    roles = _as(cloud, admin, "GET", f"{identity}/roles?name=member").json()["roles"]
    grant = f"{identity}/projects/{project_id}/users/{user_id}/roles/{roles[0]['id']}"
    assert _as(cloud, admin, "PUT", grant).status_code == 204

    login = _token(cloud, "e2e-user", "e2e")
    assert login.status_code == 201, login.text
    token = login.headers["X-Subject-Token"]
    compute = "/compute/v2.1"
    servers = _as(cloud, token, "GET", f"{compute}/servers")
    assert servers.status_code == 200 and servers.json()["servers"] == []
    quota = _as(cloud, token, "GET", f"{compute}/os-quota-sets/{project_id}")
    assert quota.status_code == 200, quota.text
    assert quota.json()["quota_set"]["id"] == project_id
    # the admin sets the new project's quota; its member sees it
    updated = _as(cloud, admin, "PUT", f"{compute}/os-quota-sets/{project_id}",
                  json={"quota_set": {"instances": 3}})
    assert updated.status_code == 200, updated.text
    quota = _as(cloud, token, "GET", f"{compute}/os-quota-sets/{project_id}")
    assert quota.json()["quota_set"]["instances"] == 3
    limits = _as(cloud, token, "GET", f"{compute}/limits").json()["limits"]["absolute"]
    assert limits["maxTotalInstances"] == 3
    for path in ("/image/v2/images", "/network/v2.0/networks", f"/volume/v3/{project_id}/volumes",
                 "/placement/"):
        resp = _as(cloud, token, "GET", path)
        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
    # not an admin of anything
    assert _as(cloud, token, "GET", f"{compute}/os-hypervisors").status_code == 403
    assert _as(cloud, token, "POST", f"{identity}/projects", json={"project": {
        "name": "mine"}}).status_code == 403

    assert _as(cloud, admin, "DELETE", f"{identity}/users/{user_id}").status_code == 204
    for path in (f"{compute}/servers", "/image/v2/images", "/network/v2.0/networks"):
        assert _as(cloud, token, "GET", path).status_code == 401, path
    assert _token(cloud, "e2e-user", "e2e").status_code == 401
    assert _as(cloud, admin, "DELETE", f"{identity}/projects/{project_id}").status_code == 204
    names = [p["name"] for p in _as(cloud, admin, "GET", f"{identity}/projects").json()[
        "projects"]]
    assert "e2e" not in names
