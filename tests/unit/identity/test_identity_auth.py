"""Request authentication: builtin tokens, keystonemiddleware headers."""

from __future__ import annotations

import pytest
import webob

from transcell import exception
from transcell.conf import CONF
from transcell.identity import auth, tokens
from transcell.identity.store import IdentityStore, bootstrap


@pytest.fixture
def store(tmp_path) -> IdentityStore:
    return bootstrap(str(tmp_path))


def test_authenticator_builds_the_context_from_a_token(store):
    user = store.user_by_name("manager")
    project = store.project_by_name("demo")
    token, _ = tokens.issue(store, user.id, project.id)
    ctx = auth.Authenticator(store)(webob.Request.blank("/", headers={"X-Auth-Token": token}))
    assert (ctx.user_id, ctx.project_id) == (user.id, project.id)
    assert (ctx.user_name, ctx.project_name) == ("manager", "demo")
    assert ctx.roles == ["manager", "member", "reader"]
    assert not ctx.is_admin


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "bogus"}])
def test_authenticator_rejects_missing_or_bad_tokens(store, headers):
    with pytest.raises(exception.NotAuthenticated) as caught:
        auth.Authenticator(store)(webob.Request.blank("/", headers=headers))
    assert caught.value.code == 401


def test_header_authenticator_trusts_confirmed_identities():
    req = webob.Request.blank("/", headers={
        "X-Identity-Status": "Confirmed", "X-User-Id": "u1", "X-User-Name": "alice",
        "X-Project-Id": "p1", "X-Project-Name": "proj", "X-Roles": "member, reader"})
    ctx = auth.HeaderAuthenticator()(req)
    assert (ctx.user_id, ctx.user_name, ctx.project_id, ctx.project_name) == \
        ("u1", "alice", "p1", "proj")
    assert ctx.roles == ["member", "reader"]


@pytest.mark.parametrize("status", [None, "Invalid"])
def test_header_authenticator_rejects_unconfirmed_identities(status):
    headers = {"X-User-Id": "u1", "X-Project-Id": "p1", "X-Roles": "admin"}
    if status:
        headers["X-Identity-Status"] = status
    with pytest.raises(exception.NotAuthenticated):
        auth.HeaderAuthenticator()(webob.Request.blank("/", headers=headers))


def test_auth_strategy_selects_the_authenticator(store):
    assert isinstance(auth.authenticator_for(store), auth.Authenticator)
    CONF.set_override("auth_strategy", "keystone", group="identity")
    try:
        assert isinstance(auth.authenticator_for(None), auth.HeaderAuthenticator)
    finally:
        CONF.clear_override("auth_strategy", group="identity")


def test_keystonemiddleware_filter_is_built_and_refuses_tokenless_requests():
    from keystonemiddleware import auth_token

    def inner(environ, start_response):  # pragma: no cover - must not be reached
        raise AssertionError("request without a token reached the API")

    wrapped = auth.wrap_with_keystonemiddleware(inner, {
        "www_authenticate_uri": "http://127.0.0.1:9/identity",
        "auth_type": "password", "auth_url": "http://127.0.0.1:9/identity"})
    assert isinstance(wrapped, auth_token.AuthProtocol)
    resp = webob.Request.blank("/servers").get_response(wrapped)
    assert resp.status_code == 401
