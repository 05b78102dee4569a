"""The real Keystone, bootstrapped for the distributed layout, with keystonemiddleware in front.

One Keystone process on a fresh PostgreSQL database serves the whole module:
its database and key setup, bootstrap and population are what the launcher
runs, and the tests then log in as every clouds.yaml user, read the catalog
and send tokens through keystonemiddleware to a transcell API. PostgreSQL
missing skips the module, or fails it under CI=true (as every database test).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import dbfixtures
import pytest
import sqlalchemy as sa
import webob
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from oslo_config import cfg

from transcell.api.compute.app import make_app as make_compute_app
from transcell.deploy import keystone
from transcell.identity.auth import HeaderAuthenticator, wrap_with_keystonemiddleware

# about 50 s on an idle machine, well over a minute on a busy one
pytestmark = [pytest.mark.distributed, pytest.mark.slow]

BASE_URL = "http://127.0.0.1:8774"
#: effective roles each cloud's token must carry (Keystone expands implied roles)
EXPECTED_ROLES = {
    "transcell-admin": ("admin", {"admin", "manager", "member", "reader"}),
    "transcell-demo": ("demo", {"member", "reader"}),
    "transcell-alt": ("alt", {"member", "reader"}),
    "transcell-reader": ("demo", {"reader"}),
    "transcell-manager": ("demo", {"manager", "member", "reader"}),
}


@dataclass
class Deployment:
    conf_file: str
    passwords: dict[str, str]
    server: keystone.KeystoneProcess
    timings: keystone.PrepareTimings
    #: what clients are given, unversioned like the launcher's public /identity
    #: (another name of the same server here)
    public_identity: str

    @property
    def auth_url(self) -> str:
        return self.server.auth_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _create_database() -> str:
    name = "transcell_t_ks_" + uuid.uuid4().hex[:8]
    engine = dbfixtures._admin_engine(dbfixtures.POSTGRESQL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return name


def _drop_database(name: str) -> None:
    dbfixtures.DatabaseFactory(dbfixtures.POSTGRESQL, None)._drop(name)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    dbfixtures.require(dbfixtures.POSTGRESQL)
    name = _create_database()
    url = (sa.engine.make_url(dbfixtures.ADMIN_URLS[dbfixtures.POSTGRESQL]).set(database=name)
           .render_as_string(hide_password=False))
    conf_dir = str(tmp_path_factory.mktemp("keystone"))
    server = None
    try:
        # bcrypt at its lowest cost: the tests log in dozens of times on a shared CPU
        conf_file = keystone.write_config(conf_dir, url, password_hash_rounds=4)
        passwords = keystone.ensure_passwords(conf_dir)
        port = _free_port()
        public_identity = f"http://localhost:{port}/identity"
        timings = keystone.prepare(conf_file, passwords, public_identity,
                                   internal_url=f"http://127.0.0.1:{port}/identity/v3")
        print(f"\nkeystone prepare on a fresh database: db_sync {timings.db_sync:.1f}s, "
              f"keys {timings.keys:.1f}s, bootstrap {timings.bootstrap:.1f}s, "
              f"total {timings.total:.1f}s")
        started = time.monotonic()
        server = keystone.start_server(conf_file, port=port)
        assert server.auth_url == f"http://127.0.0.1:{port}/identity/v3"
        up = time.monotonic() - started
        started = time.monotonic()
        keystone.populate(server.auth_url, passwords, keystone.service_endpoints(BASE_URL))
        print(f"keystone server up in {up:.1f}s, populate {time.monotonic() - started:.1f}s")
        deployment = Deployment(conf_file, passwords, server, timings, public_identity)
        yield deployment
        # a test may have restarted it: stop the one running now as well
        server = deployment.server
    finally:
        if server is not None:
            server.stop()
        _drop_database(name)


def _session(cloud: dict) -> ks_session.Session:
    auth = cloud["auth"]
    return ks_session.Session(auth=v3.Password(
        auth_url=auth["auth_url"], username=auth["username"], password=auth["password"],
        project_name=auth["project_name"], user_domain_name=auth["user_domain_name"],
        project_domain_name=auth["project_domain_name"]))


def _token(deployment: Deployment, cloud: str) -> tuple[str, object]:
    clouds = keystone.clouds_yaml(deployment.public_identity, deployment.passwords)["clouds"]
    sess = _session(clouds[cloud])
    access = sess.auth.get_access(sess)
    return access.auth_token, access


def test_config_and_passwords_are_private_and_kept(tmp_path):
    conf_dir = str(tmp_path / "ks")
    conf = keystone.write_config(conf_dir, "postgresql://u:se$cret@h/db")
    first = keystone.ensure_passwords(conf_dir)
    again = keystone.ensure_passwords(conf_dir)
    assert first == again and set(first) >= {"admin", "demo", "alt", "reader", "manager",
                                            "transcell", "placement"}
    for path in (conf, os.path.join(conf_dir, keystone.PASSWORDS_NAME),
                 os.path.join(conf_dir, keystone.LOG_NAME)):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE(os.stat(conf_dir).st_mode) == 0o700
    text = open(conf, encoding="utf-8").read()
    assert "provider = fernet" in text
    # read back as Keystone will: a $ in a password is not taken for a variable
    parsed = cfg.ConfigOpts()
    parsed.register_opt(cfg.StrOpt("connection"), group="database")
    parsed(args=["--config-file", conf], default_config_files=[])
    assert parsed.database.connection == "postgresql://u:se$cret@h/db"
    with pytest.raises(ValueError):
        keystone.authtoken_conf("http://k/v3", first, cache_time=0)


def test_keystone_server_module_keeps_clear_of_transcell_options():
    """Keystone and transcell both register on oslo.config's global CONF, and some
    names collide: the server process must never load transcell's options."""
    code = ("import sys, transcell.deploy.keystone_wsgi; "
            "sys.exit('transcell.conf' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_every_cloud_gets_a_token_with_its_roles(deployment):
    clouds = keystone.clouds_yaml(deployment.public_identity, deployment.passwords)["clouds"]
    assert set(clouds) == set(EXPECTED_ROLES)
    for cloud, (project, roles) in EXPECTED_ROLES.items():
        _, access = _token(deployment, cloud)
        assert access.project_name == project, cloud
        assert set(access.role_names) == roles, cloud
        assert clouds[cloud]["auth"]["auth_url"] == deployment.public_identity


def test_wrong_password_is_refused(deployment):
    auth = v3.Password(auth_url=deployment.auth_url, username="demo", password="wrong",
                       project_name="demo", user_domain_id="default",
                       project_domain_id="default")
    with pytest.raises(ks_exc.Unauthorized):
        auth.get_access(ks_session.Session())


def test_service_users_hold_admin_and_service_in_project_service(deployment):
    for user in keystone.SERVICE_USERS:
        auth = v3.Password(auth_url=deployment.auth_url, username=user,
                           password=deployment.passwords[user], project_name="service",
                           user_domain_id="default", project_domain_id="default")
        access = auth.get_access(ks_session.Session())
        assert {"admin", "service"} <= set(access.role_names), user


def test_catalog_lists_every_api_on_public_and_internal(deployment):
    _, access = _token(deployment, "transcell-demo")
    catalog = access.service_catalog
    for service_type, path in (("compute", "/compute/v2.1"), ("image", "/image"),
                               ("network", "/network"), ("placement", "/placement")):
        for interface in ("public", "internal"):
            assert catalog.url_for(service_type=service_type, interface=interface,
                                   region_name="RegionOne") == BASE_URL + path
    assert catalog.url_for(service_type="identity",
                           interface="public") == deployment.public_identity
    assert catalog.url_for(service_type="identity", interface="internal") == deployment.auth_url


def _echo(environ, start_response):
    ctx = HeaderAuthenticator()(webob.Request(environ))
    body = json.dumps({"user": ctx.user_name, "project_id": ctx.project_id,
                       "project": ctx.project_name, "roles": sorted(ctx.roles)}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _get(app, path: str, token: str | None) -> webob.Response:
    req = webob.Request.blank(path)
    if token is not None:
        req.headers["X-Auth-Token"] = token
    return req.get_response(app)


def test_keystonemiddleware_turns_tokens_into_transcell_identities(deployment):
    conf = keystone.authtoken_conf(deployment.auth_url, deployment.passwords)
    echo = wrap_with_keystonemiddleware(_echo, conf)
    token, access = _token(deployment, "transcell-demo")

    resp = _get(echo, "/anything", token)
    assert resp.status_int == 200, resp.text
    assert resp.json["project"] == "demo" and resp.json["project_id"] == access.project_id
    assert resp.json["user"] == "demo"
    assert "member" in resp.json["roles"] and "admin" not in resp.json["roles"]

    bad = _get(echo, "/anything", "gAAAAA-not-a-token")
    assert bad.status_int == 401
    assert deployment.auth_url.rsplit("/v3", 1)[0] in bad.headers["WWW-Authenticate"]
    assert _get(echo, "/anything", None).status_int == 401


def test_compute_api_behind_keystonemiddleware_applies_the_roles(deployment):
    conf = keystone.authtoken_conf(deployment.auth_url, deployment.passwords)
    compute = wrap_with_keystonemiddleware(make_compute_app(HeaderAuthenticator()), conf)
    demo, _ = _token(deployment, "transcell-demo")
    # listing hypervisors is for administrators only; the policy refuses before any lookup
    resp = _get(compute, "/v2.1/os-hypervisors", demo)
    assert resp.status_int == 403, resp.text
    assert resp.json["forbidden"]["code"] == 403
    assert _get(compute, "/v2.1/os-hypervisors", "bogus").status_int == 401


def _counts(deployment: Deployment) -> dict[str, int]:
    from keystoneclient.v3 import client as ks_client

    kc = ks_client.Client(session=keystone.admin_session(deployment.auth_url,
                                                         deployment.passwords["admin"]))
    return {"users": len(kc.users.list()), "projects": len(kc.projects.list()),
            "roles": len(kc.roles.list()), "services": len(kc.services.list()),
            "endpoints": len(kc.endpoints.list()),
            "assignments": len(kc.role_assignments.list())}


def test_setting_up_again_changes_nothing(deployment):
    before = _counts(deployment)
    demo, _ = _token(deployment, "transcell-demo")
    keystone.write_config(os.path.dirname(deployment.conf_file),
                          _database_url(deployment.conf_file), password_hash_rounds=4)
    passwords = keystone.ensure_passwords(os.path.dirname(deployment.conf_file))
    assert passwords == deployment.passwords
    started = time.monotonic()
    timings = keystone.prepare(deployment.conf_file, passwords, deployment.public_identity,
                               internal_url=deployment.auth_url)
    prepared = time.monotonic() - started
    keystone.populate(deployment.auth_url, passwords, keystone.service_endpoints(BASE_URL))
    print(f"\nkeystone prepare again: db_sync {timings.db_sync:.1f}s, keys "
          f"{timings.keys:.1f}s, bootstrap {timings.bootstrap:.1f}s; with populate "
          f"{time.monotonic() - started:.1f}s")
    assert timings.keys < 0.5 and prepared < 60
    assert _counts(deployment) == before
    # no password was reset: a token issued before is still good
    conf = keystone.authtoken_conf(deployment.auth_url, passwords, cache_time=-1)
    resp = _get(wrap_with_keystonemiddleware(_echo, conf), "/x", demo)
    assert resp.status_int == 200, resp.text
    _, access = _token(deployment, "transcell-admin")
    catalog = access.service_catalog
    assert catalog.url_for(service_type="identity", interface="internal") == deployment.auth_url
    assert catalog.url_for(service_type="identity",
                           interface="public") == deployment.public_identity


def _database_url(conf_file: str) -> str:
    for line in open(conf_file, encoding="utf-8"):
        if line.startswith("connection = "):
            return line.split(" = ", 1)[1].strip()
    raise AssertionError("no database connection in keystone.conf")


def test_restarted_server_accepts_tokens_issued_before(deployment):
    """The fernet keys are kept in the config directory, so a token outlives a restart."""
    demo, _ = _token(deployment, "transcell-demo")
    port = int(deployment.auth_url.split(":")[2].split("/")[0])
    started = time.monotonic()
    assert deployment.server.stop() == 0  # SIGTERM ends it cleanly; no SIGKILL needed
    print(f"\nkeystone stopped in {time.monotonic() - started:.1f}s")
    started = time.monotonic()
    deployment.server = keystone.start_server(deployment.conf_file, port=port)
    print(f"keystone started again in {time.monotonic() - started:.1f}s")
    conf = keystone.authtoken_conf(deployment.auth_url, deployment.passwords, cache_time=-1)
    resp = _get(wrap_with_keystonemiddleware(_echo, conf), "/x", demo)
    assert resp.status_int == 200, resp.text
    assert resp.json["project"] == "demo"


def test_populate_moves_the_identity_endpoints(deployment):
    """The launcher fronts Keystone by the API's /identity, which may not answer yet
    (or ever, here): populate and keystonemiddleware must go to Keystone directly."""
    public = keystone.service_endpoints(BASE_URL, services=("identity",))
    assert public == {"identity": ("keystone", BASE_URL + "/identity")}
    internal = {"identity": ("keystone", deployment.auth_url)}
    for _ in range(2):
        keystone.populate(deployment.auth_url, deployment.passwords, public,
                          internal_endpoints=internal)
    _, access = _token(deployment, "transcell-admin")
    catalog = access.service_catalog
    assert catalog.url_for(service_type="identity", interface="public") == BASE_URL + "/identity"
    assert catalog.url_for(service_type="identity", interface="internal") == deployment.auth_url
    # keystonemiddleware validates through the internal endpoint
    conf = keystone.authtoken_conf(deployment.auth_url, deployment.passwords, cache_time=-1)
    demo, _ = _token(deployment, "transcell-demo")
    assert _get(wrap_with_keystonemiddleware(_echo, conf), "/x", demo).status_int == 200


def test_a_failed_keystone_manage_quotes_what_it_logged(tmp_path):
    """keystone-manage writes its traceback to the log file, not to stderr: the
    error must carry it, or a failure far away (a CI run) cannot be read."""
    conf_file = keystone.write_config(str(tmp_path / "ks"), f"sqlite:///{tmp_path}/ks.db")
    with pytest.raises(keystone.KeystoneManageError) as caught:
        keystone.keystone_manage(conf_file, "receipt_setup", "--keystone-user",
                                 "no-such-user-here", "--keystone-group", "root")
    assert "Unknown user 'no-such-user-here'" in str(caught.value)


def test_the_token_step_leaves_the_receipt_repository_to_its_own_step(tmp_path):
    """The three key steps run side by side: if one touched another's repository
    they would race over the same temporary key file (as fernet_setup and
    receipt_setup once did)."""
    conf_file = keystone.write_config(str(tmp_path / "ks"), f"sqlite:///{tmp_path}/ks.db")
    keystone.token_key_setup(conf_file)
    assert (tmp_path / "ks" / "fernet-keys" / "0").exists()
    assert not (tmp_path / "ks" / "receipt-keys").exists()
