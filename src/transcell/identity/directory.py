"""Adding and removing projects, users, roles and grants in the identity file.

What Keystone's v3 admin API does for them, on the embedded store: each change
re-reads the file under its lock, checks its preconditions there (a name still
free, a user still there) and raises to change nothing, so two API processes
racing on the same name cannot both win. Names are unique within a domain, as
in Keystone; the embedded cloud's own entries (``IdentityStore.is_builtin``)
cannot be deleted or lose their grants, because clouds.yaml and the services
log in with them.
"""

from __future__ import annotations

import uuid
from typing import Any

from transcell import exception
from transcell.identity import passwords
from transcell.identity.store import IdentityStore, Project, Role, User

Data = dict[str, Any]


def _new_id() -> str:
    return uuid.uuid4().hex


def _find(data: Data, kind: str, entity_id: str, label: str) -> dict[str, Any]:
    for item in data[kind]:
        if item["id"] == entity_id:
            return item
    raise exception.NotFound(f"Could not find {label}: {entity_id}.")


def _domain_must_exist(data: Data, domain_id: str) -> None:
    _find(data, "domains", domain_id, "domain")


def _immutable(store: IdentityStore, kind: str, item: dict[str, Any], label: str) -> None:
    if store.is_builtin(kind, item["name"]):
        raise exception.Forbidden(
            f"Unable to modify or delete {label} {item['id']} ({item['name']}): it is one "
            "of the embedded cloud's own and is immutable.")


# -- projects -------------------------------------------------------------------------

def create_project(store: IdentityStore, name: str, domain_id: str, description: str = "",
                   enabled: bool = True) -> Project:
    project_id = _new_id()

    def add(data: Data) -> None:
        _domain_must_exist(data, domain_id)
        if any(p["name"] == name and p["domain_id"] == domain_id for p in data["projects"]):
            raise exception.Conflict(
                "Conflict occurred attempting to store project - it is not permitted to "
                f"have two projects with the same name in the same domain : {name}.")
        data["projects"].append({"id": project_id, "name": name, "domain_id": domain_id,
                                 "description": description, "enabled": enabled})

    store.change(add)
    return store.project(project_id)


def delete_project(store: IdentityStore, project_id: str) -> None:
    """The project and every grant on it; tokens scoped to it stop working."""
    def remove(data: Data) -> None:
        project = _find(data, "projects", project_id, "project")
        _immutable(store, "projects", project, "project")
        data["projects"].remove(project)
        data["assignments"] = [a for a in data["assignments"]
                               if a["project_id"] != project_id]

    store.change(remove)


# -- users ----------------------------------------------------------------------------

def create_user(store: IdentityStore, name: str, domain_id: str, password: str | None,
                *, default_project_id: str | None = None, enabled: bool = True,
                email: str | None = None, description: str | None = None) -> User:
    """A user; without a password it exists but cannot log in (as in Keystone)."""
    user_id = _new_id()
    entry: dict[str, Any] = {"id": user_id, "name": name, "domain_id": domain_id,
                             "password": "", "enabled": enabled,
                             "password_hash": passwords.hash_password(password)
                             if password is not None else None}
    for key, value in (("default_project_id", default_project_id), ("email", email),
                       ("description", description)):
        if value is not None:
            entry[key] = value

    def add(data: Data) -> None:
        _domain_must_exist(data, domain_id)
        if any(u["name"] == name and u["domain_id"] == domain_id for u in data["users"]):
            raise exception.Conflict(
                "Conflict occurred attempting to store user - Duplicate entry found "
                f"with name {name} at domain ID {domain_id}.")
        data["users"].append(entry)

    store.change(add)
    return store.user(user_id)


def delete_user(store: IdentityStore, user_id: str) -> None:
    """The user and its grants; its tokens stop working."""
    def remove(data: Data) -> None:
        user = _find(data, "users", user_id, "user")
        _immutable(store, "users", user, "user")
        data["users"].remove(user)
        data["assignments"] = [a for a in data["assignments"] if a["user_id"] != user_id]

    store.change(remove)


# -- roles and grants -------------------------------------------------------------------

def create_role(store: IdentityStore, name: str) -> Role:
    role_id = _new_id()

    def add(data: Data) -> None:
        if any(r["name"] == name for r in data["roles"]):
            raise exception.Conflict("Conflict occurred attempting to store role - "
                                     f"Duplicate entry found with name {name}.")
        data["roles"].append({"id": role_id, "name": name})

    store.change(add)
    return store.role(role_id)


def grant(store: IdentityStore, project_id: str, user_id: str, role_id: str) -> None:
    """Give the user the role on the project; granting it twice is no error."""
    def add(data: Data) -> None:
        _find(data, "projects", project_id, "project")
        _find(data, "users", user_id, "user")
        _find(data, "roles", role_id, "role")
        assignment = {"user_id": user_id, "project_id": project_id, "role_id": role_id}
        if assignment not in data["assignments"]:
            data["assignments"].append(assignment)

    store.change(add)


def revoke_grant(store: IdentityStore, project_id: str, user_id: str, role_id: str) -> None:
    """Take the role away; tokens the user holds on the project lose it at once."""
    def remove(data: Data) -> None:
        _find(data, "projects", project_id, "project")
        user = _find(data, "users", user_id, "user")
        _find(data, "roles", role_id, "role")
        assignment = {"user_id": user_id, "project_id": project_id, "role_id": role_id}
        if assignment not in data["assignments"]:
            raise exception.NotFound(
                f"Could not find role assignment with role: {role_id}, user or group: "
                f"{user_id}, project, domain, or system: {project_id}.")
        _immutable(store, "users", user, "user")
        data["assignments"].remove(assignment)

    store.change(remove)
