"""The identity file: bootstrap, reload, lookups, implied roles, clouds.yaml."""

from __future__ import annotations

import json
import os
import stat

import pytest

from transcell import exception
from transcell.identity import store as identity_store
from transcell.identity.store import IdentityStore, bootstrap, clouds_yaml


@pytest.fixture
def store(tmp_path) -> IdentityStore:
    return bootstrap(str(tmp_path))


def test_bootstrap_creates_private_file_with_the_embedded_identities(tmp_path, store):
    path = tmp_path / identity_store.FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert {p.name for p in store.projects()} == {"admin", "demo", "alt", "service"}
    assert {u.name for u in store.users()} == {"admin", "demo", "alt", "reader", "manager"}
    assert {r.name for r in store.roles()} == {"admin", "manager", "member", "reader",
                                               "service"}
    assert store.domain("default").name == "Default"
    assert all(len(u.password) >= 20 for u in store.users())
    assert len({u.password for u in store.users()}) == 5
    assert len(store.signing_key) == 32


def test_bootstrap_is_idempotent(tmp_path, store):
    before = (tmp_path / identity_store.FILE_NAME).read_bytes()
    again = bootstrap(str(tmp_path))
    loaded = IdentityStore.load(str(tmp_path))
    assert (tmp_path / identity_store.FILE_NAME).read_bytes() == before
    for other in (again, loaded):
        assert other.signing_key == store.signing_key
        assert {(u.id, u.name, u.password) for u in other.users()} == \
            {(u.id, u.name, u.password) for u in store.users()}
        assert [p.id for p in other.projects()] == [p.id for p in store.projects()]


def test_bootstrap_completes_a_partial_file_without_touching_existing_entries(tmp_path, store):
    path = tmp_path / identity_store.FILE_NAME
    data = json.loads(path.read_text())
    data["users"] = [u for u in data["users"] if u["name"] != "manager"]
    path.write_text(json.dumps(data))
    demo = store.user_by_name("demo")

    completed = bootstrap(str(tmp_path))

    assert completed.user_by_name("demo").password == demo.password
    manager = completed.user_by_name("manager")
    assert manager.password != store.user_by_name("manager").password
    demo_project = completed.project_by_name("demo", "Default")
    assert "manager" in completed.roles_for(manager.id, demo_project.id)


def test_load_before_bootstrap_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        IdentityStore.load(str(tmp_path))


def test_password_authentication(store):
    demo = store.user_by_name("demo")
    assert store.authenticate_password("demo", demo.password, "Default") == demo
    assert store.authenticate_password("demo", demo.password, "default") == demo
    assert store.authenticate_user_id(demo.id, demo.password) == demo
    for name, password, domain in (("demo", "wrong", "Default"),
                                   ("nobody", demo.password, "Default"),
                                   ("demo", demo.password, "Elsewhere")):
        with pytest.raises(exception.NotAuthenticated):
            store.authenticate_password(name, password, domain)


def test_effective_roles_include_implied_ones(store):
    def roles(user: str, project: str) -> list[str]:
        return store.roles_for(store.user_by_name(user).id,
                               store.project_by_name(project).id)

    assert roles("admin", "admin") == ["admin", "manager", "member", "reader"]
    assert roles("manager", "demo") == ["manager", "member", "reader"]
    assert roles("demo", "demo") == ["member", "reader"]
    assert roles("reader", "demo") == ["reader"]
    assert roles("alt", "alt") == ["member", "reader"]
    assert roles("demo", "alt") == []


def test_lookups_of_unknown_entities_are_not_found(store):
    with pytest.raises(exception.NotFound):
        store.project("nope")
    with pytest.raises(exception.NotFound):
        store.user("nope")
    with pytest.raises(exception.NotFound):
        store.project_by_name("demo", "Elsewhere")
    assert store.project(store.project_by_name("alt").id).name == "alt"


def test_revocations_persist_and_are_seen_by_another_instance(tmp_path, store):
    other = IdentityStore.load(str(tmp_path))
    store.revoke("audit-1", expires_at=4_000_000_000)
    assert store.is_revoked("audit-1")
    assert other.is_revoked("audit-1")
    assert IdentityStore.load(str(tmp_path)).is_revoked("audit-1")
    assert not store.is_revoked("audit-2")


def test_expired_revocations_are_pruned(store):
    store.revoke("old", expires_at=1.0)
    store.revoke("new", expires_at=4_000_000_000)
    assert not store.is_revoked("old")
    assert store.is_revoked("new")


def test_clouds_yaml_logs_in_as_each_embedded_user(store):
    clouds = clouds_yaml(store, "http://127.0.0.1:8774/identity")["clouds"]
    expected = {"transcell-admin": ("admin", "admin"), "transcell-demo": ("demo", "demo"),
                "transcell-alt": ("alt", "alt"), "transcell-reader": ("reader", "demo"),
                "transcell-manager": ("manager", "demo")}
    assert set(clouds) == set(expected)
    for name, (user, project) in expected.items():
        cloud = clouds[name]
        assert cloud["auth"] == {
            "auth_url": "http://127.0.0.1:8774/identity",
            "username": user,
            "password": store.user_by_name(user).password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        assert cloud["region_name"] == "RegionOne"
        assert cloud["identity_api_version"] == 3
        assert cloud["interface"] == "public"


def test_catalog_lists_every_api_on_three_interfaces():
    from transcell.identity.catalog import build_catalog

    catalog = build_catalog("http://h:8774/", "RegionTwo")
    urls = {entry["type"]: {e["url"] for e in entry["endpoints"]} for entry in catalog}
    assert urls == {"identity": {"http://h:8774/identity"},
                    "compute": {"http://h:8774/compute/v2.1"},
                    "image": {"http://h:8774/image"},
                    "network": {"http://h:8774/network"},
                    "placement": {"http://h:8774/placement"},
                    "block-storage": {"http://h:8774/volume/v3"},
                    "volumev3": {"http://h:8774/volume/v3"}}
    for entry in catalog:
        assert entry["id"] and entry["name"]
        assert sorted(e["interface"] for e in entry["endpoints"]) == \
            ["admin", "internal", "public"]
        assert all(e["region"] == e["region_id"] == "RegionTwo" for e in entry["endpoints"])
    assert build_catalog("http://h:8774") == build_catalog("http://h:8774")  # stable ids
