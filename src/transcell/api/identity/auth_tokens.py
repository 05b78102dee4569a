"""/v3/auth: issuing, validating and revoking tokens, and what a token may see.

Only project-scoped tokens exist in transcell: every API it serves is
project-scoped, so a request without a scope is scoped to the user's default
project (or the first one the user has a role on) rather than left unscoped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import webob

from transcell import exception, policy
from transcell.api.identity import views
from transcell.context import RequestContext
from transcell.identity import tokens
from transcell.identity.auth import context_from_payload
from transcell.identity.store import IdentityStore, Project, User
from transcell.wsgi.app import (
    context_of,
    empty_response,
    json_response,
    public_endpoint,
    read_json,
)

CatalogFactory = Callable[[str], list[dict[str, Any]]]

SUPPORTED_METHODS = ("password", "token")


def enforce(ctx: RequestContext, action: str, target: dict[str, Any]) -> None:
    """Policy with Keystone's wording for a refusal."""
    if not policy.check(ctx, action, target):
        raise exception.Forbidden(
            f"You are not authorized to perform the requested action: {action}.")


def _member(parent: Any, key: str, where: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise exception.Invalid(f"Expecting to find {key} in {where}. The server could not "
                                "comply with the request since it is either malformed or "
                                "otherwise incorrect. The client is assumed to be in error.")
    return value


def _domain_ref(ref: dict[str, Any], where: str) -> str:
    domain = _member(ref, "domain", where)
    value = domain.get("id") or domain.get("name")
    if not isinstance(value, str):
        raise exception.Invalid(f"Expecting to find id or name in domain of {where}.")
    return value


class TokenController:
    def __init__(self, store: IdentityStore, catalog: CatalogFactory):
        self.store = store
        self.catalog = catalog

    def _catalog_for(self, req: webob.Request) -> list[dict[str, Any]]:
        if "nocatalog" in req.GET:
            return []
        return self.catalog(public_endpoint(req))

    # POST /v3/auth/tokens -------------------------------------------------

    def create(self, req: webob.Request) -> webob.Response:
        body = read_json(req)
        auth = _member(body, "auth", "request body")
        identity = _member(auth, "identity", "auth")
        methods = identity.get("methods")
        if (not isinstance(methods, list) or not methods
                or not all(isinstance(m, str) for m in methods)):
            raise exception.Invalid("Expecting to find methods in identity.")
        prior: tokens.Payload | None = None
        if "password" in methods:
            user = self._password_user(_member(identity, "password", "identity"))
        elif "token" in methods:
            token_ref = _member(identity, "token", "identity")
            prior = tokens.validate(self.store, token_ref.get("id"))
            try:
                user = self.store.user(prior["user_id"])
            except exception.NotFound:
                raise exception.NotAuthenticated() from None
            if not user.enabled:
                raise exception.NotAuthenticated()
        else:
            raise exception.NotAuthenticated(
                "Attempted to authenticate with an unsupported method.")
        project = self._scope(auth.get("scope"), user, prior)
        token, token_body = tokens.issue(
            self.store, user.id, project.id,
            methods=[m for m in SUPPORTED_METHODS if m in methods],
            catalog=self._catalog_for(req),
            expires_at=prior["expires_at"] if prior else None)
        return json_response(token_body, status=201, headers={"X-Subject-Token": token})

    def _password_user(self, password_ref: dict[str, Any]) -> User:
        user_ref = _member(password_ref, "user", "password")
        password = user_ref.get("password")
        if not isinstance(password, str):
            raise exception.Invalid("Expecting to find password in user.")
        if isinstance(user_ref.get("id"), str):
            return self.store.authenticate_user_id(user_ref["id"], password)
        if not isinstance(user_ref.get("name"), str):
            raise exception.Invalid("Expecting to find id or name in user.")
        domain = _domain_ref(user_ref, "user")
        try:
            self.store.domain(domain)
        except exception.NotFound:
            raise exception.NotAuthenticated() from None
        return self.store.authenticate_password(user_ref["name"], password, domain)

    def _scope(self, scope: Any, user: User, prior: tokens.Payload | None) -> Project:
        if scope is None or scope == "unscoped":
            return self._default_project(user, prior)
        if not isinstance(scope, dict):
            raise exception.Invalid("Expecting scope to be an object.")
        if "project" not in scope:
            raise exception.Invalid("transcell issues project-scoped tokens only; "
                                    "scope the request to a project.")
        project_ref = _member(scope, "project", "scope")
        try:
            if isinstance(project_ref.get("id"), str):
                project = self.store.project(project_ref["id"])
            elif isinstance(project_ref.get("name"), str):
                project = self.store.project_by_name(
                    project_ref["name"], _domain_ref(project_ref, "project"))
            else:
                raise exception.Invalid("Expecting to find id or name in project.")
        except exception.NotFound as exc:
            raise exception.NotAuthenticated(exc.message) from None
        if not project.enabled or not self.store.roles_for(user.id, project.id):
            raise exception.NotAuthenticated(
                f"User {user.id} has no access to project {project.id}.")
        return project

    def _default_project(self, user: User, prior: tokens.Payload | None) -> Project:
        if prior is not None:
            return self.store.project(prior["project_id"])
        candidates = [p for p in self.store.projects_for(user.id) if p.enabled]
        preferred = [p for p in candidates if p.id == user.default_project_id]
        if not (preferred or candidates):
            raise exception.NotAuthenticated(f"User {user.id} has no access to any project.")
        return (preferred or candidates)[0]

    # GET / HEAD / DELETE /v3/auth/tokens -----------------------------------

    def _subject(self, req: webob.Request, action: str) -> tokens.Payload:
        subject = req.headers.get("X-Subject-Token")
        if not subject:
            raise exception.Invalid("Expecting to find X-Subject-Token in headers.")
        try:
            payload = tokens.validate(self.store, subject)
            context_from_payload(self.store, payload)  # its user, project and grant still there
        except exception.NotAuthenticated:
            raise exception.NotFound(f"Could not find token: {subject}.") from None
        enforce(context_of(req), action, {"user_id": payload["user_id"]})
        return payload

    def validate(self, req: webob.Request) -> webob.Response:
        payload = self._subject(req, "identity:validate_token")
        body = tokens.token_body(self.store, payload, self._catalog_for(req))
        return json_response(body, headers={"X-Subject-Token": req.headers["X-Subject-Token"]})

    def revoke(self, req: webob.Request) -> webob.Response:
        tokens.revoke(self.store, self._subject(req, "identity:revoke_token"))
        return empty_response(204)

    # what the caller's token gives access to ----------------------------------

    def catalog_for_token(self, req: webob.Request) -> webob.Response:
        body = views.collection(req, "catalog", self.catalog(public_endpoint(req)))
        return json_response(body)

    def projects_for_token(self, req: webob.Request) -> webob.Response:
        ctx = context_of(req)
        projects = self.store.projects_for(ctx.user_id) if ctx.user_id else []
        return json_response(views.collection(
            req, "projects", (views.project(req, p) for p in projects)))
