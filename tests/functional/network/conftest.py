"""The Neutron API over a fresh network database, called the way clients call it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import webob

from transcell import exception
from transcell.api.network import make_app
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.network import NetworkService


def fake_authenticate(req: webob.Request) -> RequestContext:
    """X-Auth-Token "user:project:role1,role2"; identity itself is tested elsewhere."""
    token = req.headers.get("X-Auth-Token")
    if not token:
        raise exception.NotAuthenticated()
    user, project, roles = token.split(":")
    return RequestContext(user_id=user, project_id=project, roles=roles.split(","))


@pytest.fixture
def service(tmp_path) -> Iterator[NetworkService]:
    url = f"sqlite:///{tmp_path / 'network.sqlite'}"
    migration.sync(url, "network")
    service = NetworkService(url)
    service.ensure_default_network(RequestContext.admin())
    yield service
    get_engine(url).dispose()


class Client:
    """Requests against the app as mounted at http://cloud:8774/network."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    def __call__(self, method: str, path: str, body=None, raw: bytes | None = None,
                 token: str | None = "") -> webob.Response:
        req = webob.Request.blank(path, method=method,
                                  base_url="http://cloud:8774/network")
        token = self.token if token == "" else token
        if token:
            req.headers["X-Auth-Token"] = token
        if body is not None or raw is not None:
            req.body = raw if raw is not None else json.dumps(body).encode()
            req.content_type = "application/json"
        return req.get_response(self.app)


@pytest.fixture
def authenticate():
    return fake_authenticate


@pytest.fixture
def app(service: NetworkService, authenticate):
    return make_app(service, authenticate)


@pytest.fixture
def admin(app) -> Client:
    return Client(app, "admin:admin-p:admin")


@pytest.fixture
def alice(app) -> Client:
    return Client(app, "alice:proj-a:member")


@pytest.fixture
def bob(app) -> Client:
    return Client(app, "bob:proj-b:member")
