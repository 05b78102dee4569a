"""Self-contained signed tokens.

A token carries its own payload and an HMAC-SHA256 signature made with the
store's key, so checking one needs no lookup and any API process sharing the
state directory (or restarted) accepts it. The only server-side state is the
short list of revoked audit ids.

Format: ``base64url(json payload) "." base64url(signature)``, no padding.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from transcell import exception
from transcell.conf import CONF
from transcell.identity.store import IdentityStore

Payload = dict[str, Any]

_REQUIRED = {"user_id": str, "project_id": str, "roles": list, "issued_at": (int, float),
             "expires_at": (int, float), "audit_id": str}


def _now() -> float:
    return time.time()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(store: IdentityStore, encoded_payload: str) -> str:
    digest = hmac.new(store.signing_key, encoded_payload.encode("ascii"), hashlib.sha256)
    return _b64encode(digest.digest())


def isotime(epoch: float) -> str:
    """Keystone's timestamp format: microseconds and a Z."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def issue(store: IdentityStore, user_id: str, project_id: str, *,
          methods: Sequence[str] = ("password",),
          catalog: list[dict[str, Any]] | None = None,
          expires_at: float | None = None) -> tuple[str, dict[str, Any]]:
    """A project-scoped token and its Keystone v3 body.

    ``expires_at`` lets a re-scoped token keep the lifetime of the token it was
    made from, as Keystone does, instead of extending a session indefinitely.
    Raises NotAuthenticated when the user holds no role on the project.
    """
    roles = store.roles_for(user_id, project_id)
    if not roles:
        raise exception.NotAuthenticated(
            f"User {user_id} has no access to project {project_id}.")
    now = round(_now(), 6)
    expiry = now + CONF.identity.token_expiration
    if expires_at is not None:
        expiry = min(expiry, expires_at)
    payload: Payload = {
        "user_id": user_id,
        "project_id": project_id,
        "roles": roles,
        "methods": list(methods),
        "issued_at": now,
        "expires_at": round(expiry, 6),
        "audit_id": _b64encode(secrets.token_bytes(16)),
    }
    encoded = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
    token = f"{encoded}.{_sign(store, encoded)}"
    return token, token_body(store, payload, catalog)


def validate(store: IdentityStore, token: str | None) -> Payload:
    """The payload of a genuine, unexpired, unrevoked token, else NotAuthenticated."""
    if not token or not isinstance(token, str) or token.count(".") != 1:
        raise exception.NotAuthenticated()
    encoded, signature = token.split(".")
    try:
        expected = _sign(store, encoded)
    except UnicodeEncodeError:
        raise exception.NotAuthenticated() from None
    if not hmac.compare_digest(expected, signature):
        raise exception.NotAuthenticated()
    try:
        payload = json.loads(_b64decode(encoded))
    except (ValueError, binascii.Error):
        raise exception.NotAuthenticated() from None
    if not isinstance(payload, dict) or any(
            not isinstance(payload.get(key), kind) for key, kind in _REQUIRED.items()):
        raise exception.NotAuthenticated()
    if payload["expires_at"] <= _now():
        raise exception.NotAuthenticated("The token has expired.")
    if store.is_revoked(payload["audit_id"]):
        raise exception.NotAuthenticated("The token has been revoked.")
    return payload


def revoke(store: IdentityStore, payload: Payload) -> None:
    store.revoke(payload["audit_id"], payload["expires_at"])


def token_body(store: IdentityStore, payload: Payload,
               catalog: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``{"token": ...}`` document Keystone returns for this payload."""
    user = store.user(payload["user_id"])
    project = store.project(payload["project_id"])
    user_domain = store.domain(user.domain_id)
    project_domain = store.domain(project.domain_id)
    roles = []
    for name in payload["roles"]:
        try:
            role = store.role_by_name(name)
        except exception.NotFound:
            continue
        roles.append({"id": role.id, "name": role.name})
    return {"token": {
        "methods": list(payload.get("methods") or ["password"]),
        "user": {"id": user.id, "name": user.name,
                 "domain": {"id": user_domain.id, "name": user_domain.name},
                 "password_expires_at": None},
        "project": {"id": project.id, "name": project.name,
                    "domain": {"id": project_domain.id, "name": project_domain.name}},
        "roles": roles,
        "is_domain": False,
        "expires_at": isotime(payload["expires_at"]),
        "issued_at": isotime(payload["issued_at"]),
        "audit_ids": [payload["audit_id"]],
        "catalog": list(catalog or []),
    }}
