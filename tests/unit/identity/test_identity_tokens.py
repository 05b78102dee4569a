"""Signed tokens: issue, validate, expiry, tampering, revocation."""

from __future__ import annotations

import base64
import json

import pytest

from transcell import exception
from transcell.conf import CONF
from transcell.identity import tokens
from transcell.identity.store import IdentityStore, bootstrap


@pytest.fixture
def store(tmp_path) -> IdentityStore:
    return bootstrap(str(tmp_path))


def _issue(store: IdentityStore, user: str = "demo", project: str = "demo"):
    return tokens.issue(store, store.user_by_name(user).id, store.project_by_name(project).id)


def test_issued_token_validates_to_its_payload(store):
    token, body = _issue(store)
    payload = tokens.validate(store, token)
    demo = store.user_by_name("demo")
    assert payload["user_id"] == demo.id
    assert payload["project_id"] == store.project_by_name("demo").id
    assert payload["roles"] == ["member", "reader"]
    assert payload["expires_at"] - payload["issued_at"] == pytest.approx(
        CONF.identity.token_expiration)
    assert body["token"]["audit_ids"] == [payload["audit_id"]]


def test_body_is_keystone_shaped(store):
    catalog = [{"id": "x", "type": "compute", "name": "nova", "endpoints": []}]
    _, body = tokens.issue(store, store.user_by_name("admin").id,
                           store.project_by_name("admin").id, catalog=catalog)
    token = body["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["user"]["password_expires_at"] is None
    assert token["project"]["name"] == "admin"
    assert {r["name"] for r in token["roles"]} == {"admin", "manager", "member", "reader"}
    assert all(r["id"] == store.role_by_name(r["name"]).id for r in token["roles"])
    assert token["is_domain"] is False
    assert token["catalog"] == catalog
    for key in ("issued_at", "expires_at"):
        assert token[key].endswith("Z") and len(token[key]) == len("2024-01-01T00:00:00.000000Z")


def test_tokens_survive_a_restart(tmp_path, store):
    token, _ = _issue(store)
    reloaded = bootstrap(str(tmp_path))
    assert tokens.validate(reloaded, token)["user_id"] == store.user_by_name("demo").id


def test_expired_token_is_rejected(store, monkeypatch):
    token, _ = _issue(store)
    payload = tokens.validate(store, token)
    monkeypatch.setattr(tokens, "_now", lambda: payload["expires_at"] + 1)
    with pytest.raises(exception.NotAuthenticated):
        tokens.validate(store, token)


def test_token_lifetime_follows_configuration(store):
    CONF.set_override("token_expiration", 60, group="identity")
    try:
        payload = tokens.validate(store, _issue(store)[0])
    finally:
        CONF.clear_override("token_expiration", group="identity")
    assert payload["expires_at"] - payload["issued_at"] == pytest.approx(60)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "a.b.c", "\u00e9.\u00e9", None])
def test_garbage_is_rejected(store, garbage):
    with pytest.raises(exception.NotAuthenticated):
        tokens.validate(store, garbage)


def test_tampered_payload_is_rejected(store):
    token, _ = _issue(store, "reader", "demo")
    encoded, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload["roles"] = ["admin", "reader"]
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(exception.NotAuthenticated):
        tokens.validate(store, f"{forged}.{signature}")


def test_token_signed_with_another_key_is_rejected(store, tmp_path_factory):
    other = bootstrap(str(tmp_path_factory.mktemp("other")))
    token, _ = tokens.issue(other, other.user_by_name("demo").id,
                            other.project_by_name("demo").id)
    with pytest.raises(exception.NotAuthenticated):
        tokens.validate(store, token)


def test_revoked_token_is_rejected_but_others_are_not(store):
    token, _ = _issue(store)
    other, _ = _issue(store)
    tokens.revoke(store, tokens.validate(store, token))
    with pytest.raises(exception.NotAuthenticated):
        tokens.validate(store, token)
    assert tokens.validate(store, other)


def test_no_token_for_a_project_without_a_role(store):
    with pytest.raises(exception.NotAuthenticated):
        _issue(store, "demo", "alt")


def test_rescoped_token_keeps_the_original_expiry(store):
    first = tokens.validate(store, _issue(store)[0])
    _, body = tokens.issue(store, first["user_id"], first["project_id"],
                           methods=["token"], expires_at=first["expires_at"] - 100)
    assert body["token"]["expires_at"] == tokens.isotime(first["expires_at"] - 100)
