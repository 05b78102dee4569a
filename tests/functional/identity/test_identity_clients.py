"""Real clients (keystoneauth1, openstacksdk) log in over HTTP and find compute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from transcell.api.identity import make_app
from transcell.identity.catalog import default_catalog
from transcell.identity.store import IdentityStore, bootstrap, clouds_yaml
from transcell.wsgi.server import HTTPService, PrefixDispatcher


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[tuple[IdentityStore, str]]:
    store = bootstrap(str(tmp_path_factory.mktemp("identity")))
    service = HTTPService(PrefixDispatcher({"/identity": make_app(store, default_catalog)}),
                          "127.0.0.1", 0)
    service.start()
    try:
        yield store, f"http://127.0.0.1:{service.port}"
    finally:
        service.stop()


def test_keystoneauth_password_plugin(cloud):
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    store, base = cloud
    auth = v3.Password(auth_url=f"{base}/identity/v3", username="demo",
                       password=store.user_by_name("demo").password, project_name="demo",
                       user_domain_name="Default", project_domain_name="Default")
    sess = session.Session(auth=auth)
    assert sess.get_token()
    assert sess.get_project_id() == store.project_by_name("demo").id
    assert sess.get_endpoint(service_type="compute", interface="public",
                             region_name="RegionOne") == f"{base}/compute/v2.1"
    access = auth.get_access(sess)
    assert set(access.role_names) == {"member", "reader"}


def test_openstacksdk_generic_discovery(cloud):
    import openstack.connection

    store, base = cloud
    conn = openstack.connection.Connection(
        auth_url=f"{base}/identity", username="admin",
        password=store.user_by_name("admin").password, project_name="admin",
        user_domain_name="Default", project_domain_name="Default",
        region_name="RegionOne", identity_api_version="3")
    try:
        assert conn.authorize()
        assert conn.endpoint_for("compute") == f"{base}/compute/v2.1"
        # the identity proxy discovers at /identity (a 300 version list) first
        assert {p.name for p in conn.identity.projects()} == {"admin", "demo", "alt",
                                                              "service"}
    finally:
        conn.close()


def test_openstacksdk_with_generated_clouds_yaml(cloud, tmp_path):
    import openstack.config
    import openstack.connection

    store, base = cloud
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds_yaml(store, f"{base}/identity")))
    config = openstack.config.OpenStackConfig(config_files=[str(path)], load_envvars=False)
    conn = openstack.connection.Connection(config=config.get_one(cloud="transcell-reader"))
    try:
        assert conn.authorize()
        assert conn.current_project_id == store.project_by_name("demo").id
        assert conn.endpoint_for("compute") == f"{base}/compute/v2.1"
    finally:
        conn.close()
