"""Placement's own configuration and the guard in front of its public mount."""

from __future__ import annotations

import pytest
import webob

from transcell import conf as transcell_conf
from transcell import exception
from transcell.context import RequestContext
from transcell.placement import embedded


def test_placement_configuration_is_its_own(monkeypatch):
    monkeypatch.setenv("OS_PLACEMENT__MAX_ALLOCATION_CANDIDATES", "5")
    conf = embedded.build_config("sqlite:///x.sqlite")
    assert conf.placement_database.connection == "sqlite:///x.sqlite"
    assert conf.placement_database.sync_on_startup is True
    assert conf.api.auth_strategy == "noauth2"
    assert conf.placement.max_allocation_candidates == -1   # environment ignored
    assert "state_dir" not in conf
    assert "placement_database" not in transcell_conf.CONF
    assert "auth_strategy" not in transcell_conf.CONF.placement


def test_database_url_defaults_to_the_state_dir(tmp_path):
    transcell_conf.CONF.set_override("state_dir", str(tmp_path))
    try:
        assert embedded.database_url() == f"sqlite:///{tmp_path / 'placement.sqlite'}"
    finally:
        transcell_conf.CONF.clear_override("state_dir")


class Recorder:
    def __init__(self):
        self.environ = None

    def __call__(self, environ, start_response):
        self.environ = environ
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]


def authenticate(req: webob.Request) -> RequestContext:
    if req.headers.get("X-Auth-Token") == "good":
        return RequestContext(user_id="u1", project_id="p1", roles=["service", "reader"])
    raise exception.NotAuthenticated()


def test_verified_identity_replaces_whatever_the_caller_claimed():
    inner = Recorder()
    req = webob.Request.blank("/resource_providers", headers={
        "X-Auth-Token": "good", "X-Roles": "admin", "X-User-Id": "admin",
        "X-Project-Id": "evil", "OpenStack-System-Scope": "all"})
    assert req.get_response(embedded.ProtectedPlacement(inner, authenticate)).status_int == 200
    env = inner.environ
    assert env["HTTP_X_AUTH_TOKEN"] == "u1:p1"
    assert env["HTTP_X_ROLES"] == "service,reader"
    for key in ("HTTP_X_USER_ID", "HTTP_X_PROJECT_ID", "HTTP_OPENSTACK_SYSTEM_SCOPE"):
        assert key not in env


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("bad", 401)])
def test_unauthenticated_requests_stop_at_the_guard(token, status):
    inner = Recorder()
    headers = {"X-Auth-Token": token} if token else {}
    resp = webob.Request.blank("/usages", headers=headers).get_response(
        embedded.ProtectedPlacement(inner, authenticate))
    assert resp.status_int == status
    assert resp.json["errors"][0]["title"] == "Unauthorized"
    assert inner.environ is None


def test_writes_to_sqlite_placement_are_serialised():
    import threading
    import time

    active, peak = [0], [0]
    lock = threading.Lock()

    def slow(environ, start_response):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        start_response("204 No Content", [])
        return [b""]

    app = embedded.SerializedWrites(slow)

    def run(method):
        webob.Request.blank("/x", method=method).get_response(app)

    writers = [threading.Thread(target=run, args=("PUT",)) for _ in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    assert peak[0] == 1
    peak[0] = 0
    readers = [threading.Thread(target=run, args=("GET",)) for _ in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert peak[0] > 1
