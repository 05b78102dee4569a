"""Read-only users, projects, roles and domains.

Clients look these up to turn names into ids (``--project demo``), so they
must answer like Keystone: an unknown id is a 404, a known one the caller may
not see is a 403, and a list shows a non-admin only what concerns them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import webob

from transcell import exception, policy
from transcell.api.identity import views
from transcell.api.identity.auth_tokens import enforce
from transcell.identity.store import IdentityStore
from transcell.wsgi.app import context_of, json_response

T = TypeVar("T")


def _filtered(req: webob.Request, items: Iterable[T], *attrs: str) -> list[T]:
    """Keystone's exact-match list filters (``?name=demo&domain_id=default``)."""
    wanted = {attr: req.GET[attr] for attr in attrs if attr in req.GET}
    return [item for item in items
            if all(getattr(item, attr) == value for attr, value in wanted.items())]


class ResourceController:
    def __init__(self, store: IdentityStore):
        self.store = store

    def list_users(self, req: webob.Request) -> webob.Response:
        ctx = context_of(req)
        if policy.check(ctx, "identity:list_users", {}):
            users = self.store.users()
        else:
            users = [u for u in self.store.users() if u.id == ctx.user_id]
        users = _filtered(req, users, "name", "domain_id")
        return json_response(views.collection(
            req, "users", (views.user(req, u) for u in users)))

    def show_user(self, req: webob.Request, user_id: str) -> webob.Response:
        user = self.store.user(user_id)
        enforce(context_of(req), "identity:get_user", {"user_id": user.id})
        return json_response({"user": views.user(req, user)})

    def list_user_projects(self, req: webob.Request, user_id: str) -> webob.Response:
        user = self.store.user(user_id)
        enforce(context_of(req), "identity:list_user_projects", {"user_id": user.id})
        projects = _filtered(req, self.store.projects_for(user.id), "name", "domain_id")
        return json_response(views.collection(
            req, "projects", (views.project(req, p) for p in projects)))

    def list_projects(self, req: webob.Request) -> webob.Response:
        ctx = context_of(req)
        if policy.check(ctx, "identity:list_projects", {}):
            projects = self.store.projects()
        else:
            projects = self.store.projects_for(ctx.user_id) if ctx.user_id else []
        projects = _filtered(req, projects, "name", "domain_id")
        return json_response(views.collection(
            req, "projects", (views.project(req, p) for p in projects)))

    def show_project(self, req: webob.Request, project_id: str) -> webob.Response:
        project = self.store.project(project_id)
        enforce(context_of(req), "identity:get_project", {"project_id": project.id})
        return json_response({"project": views.project(req, project)})

    def list_roles(self, req: webob.Request) -> webob.Response:
        enforce(context_of(req), "identity:list_roles", {})
        roles = _filtered(req, self.store.roles(), "name")
        return json_response(views.collection(
            req, "roles", (views.role(req, r) for r in roles)))

    def list_domains(self, req: webob.Request) -> webob.Response:
        enforce(context_of(req), "identity:list_domains", {})
        domains = _filtered(req, self.store.domains(), "name")
        return json_response(views.collection(
            req, "domains", (views.domain(req, d) for d in domains)))

    def show_domain(self, req: webob.Request, domain_id: str) -> webob.Response:
        enforce(context_of(req), "identity:list_domains", {})
        domain = self.store.domain(domain_id)
        if domain.id != domain_id:  # store.domain also takes names; a URL holds an id
            raise exception.NotFound(f"Could not find domain: {domain_id}.")
        return json_response({"domain": views.domain(req, domain)})
