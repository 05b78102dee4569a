"""Image and network rules live in the compute rules' enforcer: listed by the sample
generator, and overridden by the same ``[oslo_policy] policy_file``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import webob

from transcell import policy
from transcell.api.network import make_app
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.network import NetworkService


def test_sample_generator_lists_image_and_network_rules():
    exe = os.path.join(os.path.dirname(sys.executable), "oslopolicy-sample-generator")
    out = subprocess.run([exe, "--namespace", "transcell"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for name in ("os_compute_api:servers:create", "add_image", "publicize_image",
                 "download_image", "create_port", "delete_port",
                 "create_port:binding:host_id", "update_port:device_owner",
                 "get_port_binding", "update_network:tags", "create_security_group"):
        assert f'"{name}"' in out, name


@pytest.fixture
def network_app(tmp_path):
    url = f"sqlite:///{tmp_path / 'network.sqlite'}"
    migration.sync(url, "network")
    service = NetworkService(url)
    service.ensure_default_network(RequestContext.admin())

    def authenticate(req: webob.Request) -> RequestContext:
        user, project, roles = req.headers["X-Auth-Token"].split(":")
        return RequestContext(user_id=user, project_id=project, roles=roles.split(","))

    yield make_app(service, authenticate)
    get_engine(url).dispose()


def _call(app, token: str, method: str, path: str, body=None) -> webob.Response:
    req = webob.Request.blank(path, method=method, base_url="http://cloud/network")
    req.headers["X-Auth-Token"] = token
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    return req.get_response(app)


def test_policy_file_overrides_network_rules(network_app, tmp_path):
    member, reader = "alice:proj-a:member", "rita:proj-a:reader"
    body = {"network": {"name": "n1"}}
    assert _call(network_app, reader, "POST", "/v2.0/networks", body).status_int == 403
    made = _call(network_app, member, "POST", "/v2.0/networks", body)
    assert made.status_int == 201
    net_id = made.json["network"]["id"]

    rules = tmp_path / "policy.yaml"
    rules.write_text('"create_network": "!"\n"delete_network": "role:reader"\n')
    CONF.set_override("policy_file", str(rules), group="oslo_policy")
    policy.reset()
    try:
        refused = _call(network_app, member, "POST", "/v2.0/networks", body)
        assert refused.status_int == 403
        assert refused.json["NeutronError"]["type"] == "PolicyNotAuthorized"
        assert "create_network" in refused.json["NeutronError"]["message"]
        assert _call(network_app, reader, "DELETE", f"/v2.0/networks/{net_id}").status_int == 204
    finally:
        CONF.clear_override("policy_file", group="oslo_policy")
        policy.reset()
    assert _call(network_app, member, "POST", "/v2.0/networks", body).status_int == 201
