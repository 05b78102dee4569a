"""Turning a request's credentials into a RequestContext.

Two strategies, chosen by ``[identity] auth_strategy``:

* builtin: transcell checks the tokens it issued itself (``Authenticator``);
* keystone: keystonemiddleware's auth_token filter validates the token against
  a real Keystone and leaves the identity in headers (``HeaderAuthenticator``).

Either way an API sees the same context, so nothing downstream knows or cares
which identity service is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import webob

from transcell import exception
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.identity import tokens
from transcell.identity.store import IdentityStore

WSGIApp = Callable[..., Iterable[bytes]]


class Authenticator:
    """Validate transcell's own X-Auth-Token."""

    def __init__(self, store: IdentityStore):
        self.store = store

    def __call__(self, req: webob.Request) -> RequestContext:
        payload = tokens.validate(self.store, req.headers.get("X-Auth-Token"))
        return context_from_payload(self.store, payload)


def context_from_payload(store: IdentityStore, payload: tokens.Payload) -> RequestContext:
    """The token's identity as it stands now: a token outliving its user, its
    project or its grants (or either being disabled) grants nothing, and one whose
    user lost a role since it was issued no longer carries that role, as when
    Keystone revokes the tokens of a deleted assignment."""
    try:
        user = store.user(payload["user_id"])
        project = store.project(payload["project_id"])
    except exception.NotFound:
        raise exception.NotAuthenticated() from None
    current = set(store.roles_for(user.id, project.id))
    roles = [role for role in payload["roles"] if role in current]
    if not (roles and user.enabled and project.enabled):
        raise exception.NotAuthenticated()
    return RequestContext(user_id=payload["user_id"], project_id=payload["project_id"],
                          roles=roles, user_name=user.name, project_name=project.name)


class HeaderAuthenticator:
    """Trust the identity headers keystonemiddleware set after validating the token.

    Only safe behind ``wrap_with_keystonemiddleware``: auth_token strips any
    identity headers a client sent before it sets its own.
    """

    def __call__(self, req: webob.Request) -> RequestContext:
        headers = req.headers
        if headers.get("X-Identity-Status") != "Confirmed":
            raise exception.NotAuthenticated()
        user_id = headers.get("X-User-Id")
        project_id = headers.get("X-Project-Id")
        if not user_id:
            raise exception.NotAuthenticated()
        roles = [r.strip() for r in headers.get("X-Roles", "").split(",") if r.strip()]
        return RequestContext(user_id=user_id, project_id=project_id, roles=roles,
                              user_name=headers.get("X-User-Name"),
                              project_name=headers.get("X-Project-Name"))


def wrap_with_keystonemiddleware(app: WSGIApp, conf_dict: Mapping[str, Any]) -> WSGIApp:
    """Put keystonemiddleware's auth_token filter in front of an API.

    ``conf_dict`` holds the ``[keystone_authtoken]`` settings (www_authenticate_uri,
    auth_url, auth_type, username, ...), as paste would pass them. Decisions are
    never delayed: an API behind the filter only ever sees confirmed identities
    or no request at all.
    """
    from keystonemiddleware import auth_token

    conf = {key: value for key, value in conf_dict.items()}
    conf["delay_auth_decision"] = False
    return auth_token.AuthProtocol(app, conf)


def authenticator_for(store: IdentityStore | None) -> Callable[[webob.Request], RequestContext]:
    """The authenticator ``[identity] auth_strategy`` asks for."""
    if CONF.identity.auth_strategy == "keystone":
        return HeaderAuthenticator()
    if store is None:
        raise ValueError("the builtin auth strategy needs an identity store")
    return Authenticator(store)
