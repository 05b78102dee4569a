"""Keystone's v3 admin API for projects, users, roles and grants.

Enough for an administrator to give someone an account, and for Tempest's
dynamic credentials, which make a project, a user and a grant per test class
and delete them afterwards. Every call is admin-only by default (Keystone's
rule names, so a policy file written for Keystone carries over), input is
checked before anything is written, and a refused or invalid request changes
nothing.
"""

from __future__ import annotations

import re
from typing import Any

import webob

from transcell import exception
from transcell.api.identity import views
from transcell.api.identity.auth_tokens import enforce
from transcell.identity import directory
from transcell.identity.store import DEFAULT_DOMAIN_ID, IdentityStore
from transcell.wsgi.app import (
    application_url,
    context_of,
    empty_response,
    json_response,
    public_url,
    read_json,
)

_NON_BLANK = re.compile(r"\S")


def _invalid(field: str, why: str) -> exception.Invalid:
    return exception.Invalid(f"Invalid input for field '{field}': {why}")


def _entity(req: webob.Request, member: str) -> dict[str, Any]:
    body = read_json(req)
    if not isinstance(body, dict) or not isinstance(body.get(member), dict):
        raise exception.Invalid(f"Expecting to find {member} in request body. The server "
                                "could not comply with the request since it is either "
                                "malformed or otherwise incorrect. The client is assumed "
                                "to be in error.")
    return body[member]


def _name(ref: dict[str, Any], max_length: int) -> str:
    if "name" not in ref:
        raise _invalid("name", "'name' is a required property")
    name = ref["name"]
    if not isinstance(name, str):
        raise _invalid("name", f"{name!r} is not of type 'string'")
    if not 1 <= len(name) <= max_length or not _NON_BLANK.search(name):
        raise _invalid("name", f"the name must hold 1 to {max_length} characters, "
                       "not all of them blank")
    return name


def _optional_string(ref: dict[str, Any], field: str, max_length: int = 255) -> str | None:
    value = ref.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(field, f"{value!r} is not of type 'string', 'null'")
    if len(value) > max_length:
        raise _invalid(field, f"it is longer than {max_length} characters")
    return value


def _enabled(ref: dict[str, Any]) -> bool:
    value = ref.get("enabled", True)
    if not isinstance(value, bool):
        raise _invalid("enabled", f"{value!r} is not of type 'boolean'")
    return value


def _domain_id(ref: dict[str, Any]) -> str:
    return _optional_string(ref, "domain_id", 64) or DEFAULT_DOMAIN_ID


def _grant_link(req: webob.Request, project_id: str, user_id: str, role_id: str) -> str:
    return (f"{application_url(req)}/v3/projects/{project_id}/users/{user_id}"
            f"/roles/{role_id}")


class AdminController:
    def __init__(self, store: IdentityStore):
        self.store = store

    # projects --------------------------------------------------------------------

    def create_project(self, req: webob.Request) -> webob.Response:
        enforce(context_of(req), "identity:create_project", {})
        ref = _entity(req, "project")
        name = _name(ref, 64)
        description = _optional_string(ref, "description", 65535) or ""
        enabled = _enabled(ref)
        domain_id = _domain_id(ref)
        if ref.get("is_domain") not in (None, False):
            raise _invalid("is_domain", "projects acting as domains are not served")
        parent_id = _optional_string(ref, "parent_id", 64)
        if parent_id not in (None, domain_id):
            raise _invalid("parent_id", "project hierarchies are not served; a project's "
                           "parent is its domain")
        project = directory.create_project(self.store, name, domain_id, description,
                                           enabled)
        return json_response({"project": views.project(req, project)}, status=201)

    def delete_project(self, req: webob.Request, project_id: str) -> webob.Response:
        enforce(context_of(req), "identity:delete_project", {"project_id": project_id})
        directory.delete_project(self.store, project_id)
        return empty_response(204)

    # users ---------------------------------------------------------------------------

    def create_user(self, req: webob.Request) -> webob.Response:
        enforce(context_of(req), "identity:create_user", {})
        ref = _entity(req, "user")
        name = _name(ref, 255)
        password = _optional_string(ref, "password", 4096)
        user = directory.create_user(
            self.store, name, _domain_id(ref), password,
            default_project_id=_optional_string(ref, "default_project_id", 64),
            enabled=_enabled(ref), email=_optional_string(ref, "email"),
            description=_optional_string(ref, "description", 65535))
        return json_response({"user": views.user(req, user)}, status=201)

    def delete_user(self, req: webob.Request, user_id: str) -> webob.Response:
        enforce(context_of(req), "identity:delete_user", {"user_id": user_id})
        directory.delete_user(self.store, user_id)
        return empty_response(204)

    # roles ---------------------------------------------------------------------------

    def create_role(self, req: webob.Request) -> webob.Response:
        enforce(context_of(req), "identity:create_role", {})
        ref = _entity(req, "role")
        role = directory.create_role(self.store, _name(ref, 255))
        return json_response({"role": views.role(req, role)}, status=201)

    def show_role(self, req: webob.Request, role_id: str) -> webob.Response:
        enforce(context_of(req), "identity:get_role", {})
        return json_response({"role": views.role(req, self.store.role(role_id))})

    # grants of a role to a user on a project ---------------------------------------

    def _grant_target(self, project_id: str, user_id: str, role_id: str | None = None
                      ) -> dict[str, Any]:
        """Looks each one up, so a missing one is a 404 naming it."""
        self.store.project(project_id)
        self.store.user(user_id)
        if role_id is not None:
            self.store.role(role_id)
        return {"project_id": project_id, "user_id": user_id}

    def create_grant(self, req: webob.Request, project_id: str, user_id: str,
                     role_id: str) -> webob.Response:
        enforce(context_of(req), "identity:create_grant", {"project_id": project_id})
        directory.grant(self.store, project_id, user_id, role_id)
        return empty_response(204)

    def check_grant(self, req: webob.Request, project_id: str, user_id: str,
                    role_id: str) -> webob.Response:
        enforce(context_of(req), "identity:check_grant", {"project_id": project_id})
        self._grant_target(project_id, user_id, role_id)
        if (user_id, project_id, role_id) not in self.store.assignments():
            raise exception.NotFound(
                f"Could not find role assignment with role: {role_id}, user or group: "
                f"{user_id}, project, domain, or system: {project_id}.")
        return empty_response(204)

    def revoke_grant(self, req: webob.Request, project_id: str, user_id: str,
                     role_id: str) -> webob.Response:
        enforce(context_of(req), "identity:revoke_grant", {"project_id": project_id})
        directory.revoke_grant(self.store, project_id, user_id, role_id)
        return empty_response(204)

    def list_grants(self, req: webob.Request, project_id: str, user_id: str
                    ) -> webob.Response:
        enforce(context_of(req), "identity:list_grants", {"project_id": project_id})
        self._grant_target(project_id, user_id)
        role_ids = [r for u, p, r in self.store.assignments()
                    if (u, p) == (user_id, project_id)]
        roles = [self.store.role(r) for r in role_ids]
        return json_response(views.collection(
            req, "roles", (views.role(req, r) for r in roles)))

    def list_role_assignments(self, req: webob.Request) -> webob.Response:
        """Direct grants, filtered by ``user.id``, ``role.id`` and ``scope.project.id``."""
        enforce(context_of(req), "identity:list_role_assignments", {})
        wanted = {index: req.GET[key] for index, key in
                  ((0, "user.id"), (1, "scope.project.id"), (2, "role.id")) if key in req.GET}
        found = [a for a in self.store.assignments()
                 if all(a[index] == value for index, value in wanted.items())]
        items = [{"role": {"id": r}, "user": {"id": u}, "scope": {"project": {"id": p}},
                  "links": {"assignment": _grant_link(req, p, u, r)}}
                 for u, p, r in found]
        return json_response({"role_assignments": items,
                              "links": {"self": public_url(req), "previous": None,
                                        "next": None}})
