"""Keystone's JSON shapes for the entities transcell's identity API shows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import webob

from transcell.identity.store import Domain, Project, Role, User
from transcell.wsgi.app import application_url, public_url


def _self_link(req: webob.Request, collection: str, entity_id: str) -> dict[str, Any]:
    return {"self": f"{application_url(req)}/v3/{collection}/{entity_id}"}


def collection(req: webob.Request, key: str, items: Iterable[dict[str, Any]]
               ) -> dict[str, Any]:
    return {key: list(items), "links": {"self": public_url(req), "previous": None, "next": None}}


def project(req: webob.Request, item: Project) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "domain_id": item.domain_id,
            "description": item.description, "enabled": item.enabled,
            "parent_id": item.domain_id, "is_domain": False, "tags": [], "options": {},
            "links": _self_link(req, "projects", item.id)}


def user(req: webob.Request, item: User) -> dict[str, Any]:
    body = {"id": item.id, "name": item.name, "domain_id": item.domain_id,
            "enabled": item.enabled, "password_expires_at": None, "options": {},
            "links": _self_link(req, "users", item.id)}
    for key in ("default_project_id", "email", "description"):
        if getattr(item, key):
            body[key] = getattr(item, key)
    return body


def role(req: webob.Request, item: Role) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "domain_id": None, "description": None,
            "options": {}, "links": _self_link(req, "roles", item.id)}


def domain(req: webob.Request, item: Domain) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "description": "", "enabled": True,
            "tags": [], "options": {}, "links": _self_link(req, "domains", item.id)}
