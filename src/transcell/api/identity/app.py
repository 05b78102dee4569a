"""The identity API: a Keystone v3 subset, enough for keystoneauth, the
openstack CLI, openstacksdk and Tempest to log in and find the other APIs.

The whole API surface is the route table below.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from typing import Any

import webob

from transcell.api.identity import versions
from transcell.api.identity.admin import AdminController
from transcell.api.identity.auth_tokens import CatalogFactory, TokenController
from transcell.api.identity.resources import ResourceController
from transcell.context import RequestContext
from transcell.identity.auth import Authenticator
from transcell.identity.store import IdentityStore
from transcell.wsgi.app import JSONApp, application_url

TOKENS_PATH = "/v3/auth/tokens"


def format_error(code: int, message: str) -> dict[str, Any]:
    """Keystone's error envelope, which Tempest and keystoneauth read."""
    try:
        title = http.HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return {"error": {"code": code, "message": message, "title": title}}


class IdentityApp(JSONApp):
    public_templates = frozenset({"/", "/v3"})

    def __init__(self, table, authenticate: Callable[[webob.Request], RequestContext],
                 store: IdentityStore | None = None):
        super().__init__(table, self._authenticate, format_error)
        self._check_token = authenticate
        self._store = store

    def prepare(self, req: webob.Request) -> None:
        # Another API process may have added a user or a grant since this one last looked.
        if self._store is not None:
            self._store.refresh()

    def _authenticate(self, req: webob.Request) -> RequestContext:
        """Everything needs a token except asking for one."""
        if req.method == "POST" and req.path_info.rstrip("/") == TOKENS_PATH:
            return RequestContext()
        return self._check_token(req)

    def finish(self, req: webob.Request, resp: webob.Response) -> None:
        if resp.status_code == 401:
            # Tells a client where to get a token, as Keystone does.
            resp.headers["WWW-Authenticate"] = f'Keystone uri="{application_url(req)}"'


def make_app(store: IdentityStore, catalog: CatalogFactory,
             authenticate: Callable[[webob.Request], RequestContext] | None = None
             ) -> IdentityApp:
    """The identity WSGI app.

    ``catalog(base_url)`` returns the service catalog; ``base_url`` is the
    scheme, host and port the client used (``http://127.0.0.1:8774``), so the
    caller, which knows where each API is mounted, appends its prefixes.
    """
    tokens = TokenController(store, catalog)
    resources = ResourceController(store)
    admin = AdminController(store)
    grant = {"PUT": admin.create_grant, "GET": admin.check_grant,
             "HEAD": admin.check_grant, "DELETE": admin.revoke_grant}
    table = {
        "/": {"GET": versions.list_versions},
        "/v3": {"GET": versions.show_version},
        TOKENS_PATH: {"POST": tokens.create, "GET": tokens.validate,
                      "HEAD": tokens.validate, "DELETE": tokens.revoke},
        "/v3/auth/catalog": {"GET": tokens.catalog_for_token},
        "/v3/auth/projects": {"GET": tokens.projects_for_token},
        "/v3/users": {"GET": resources.list_users, "POST": admin.create_user},
        "/v3/users/{user_id}": {"GET": resources.show_user, "DELETE": admin.delete_user},
        "/v3/users/{user_id}/projects": {"GET": resources.list_user_projects},
        "/v3/projects": {"GET": resources.list_projects, "POST": admin.create_project},
        "/v3/projects/{project_id}": {"GET": resources.show_project,
                                      "DELETE": admin.delete_project},
        "/v3/projects/{project_id}/users/{user_id}/roles": {"GET": admin.list_grants},
        "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}": grant,
        "/v3/roles": {"GET": resources.list_roles, "POST": admin.create_role},
        "/v3/roles/{role_id}": {"GET": admin.show_role},
        "/v3/role_assignments": {"GET": admin.list_role_assignments},
        "/v3/domains": {"GET": resources.list_domains},
        "/v3/domains/{domain_id}": {"GET": resources.show_domain},
    }
    return IdentityApp(table, authenticate or Authenticator(store), store)
