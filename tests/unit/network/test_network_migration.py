"""Network schema 0002 on a database that already has default security groups."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command

from transcell.context import RequestContext
from transcell.db import migration
from transcell.db.session import get_engine
from transcell.network import NetworkService

GROUP = "6a3c1e52-4f2b-4d8e-9a77-0d9c2b1f3e44"


def test_existing_default_groups_keep_their_rule_ids(tmp_path):
    url = f"sqlite:///{tmp_path / 'network.sqlite'}"
    cfg = migration._config("network")
    with get_engine(url).begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
        connection.execute(sa.text(
            "INSERT INTO security_groups (id, project_id, name, description, tags, "
            "revision_number, created_at, updated_at) VALUES (:id, 'proj-a', 'default', "
            "'Default security group', '[]', 0, :now, :now)"),
            {"id": GROUP, "now": dt.datetime(2026, 11, 30)})
    migration.sync(url, "network")
    try:
        service = NetworkService(url)
        alice = RequestContext(user_id="alice", project_id="proj-a", roles=["member"])
        (group,) = service.list_security_groups(alice)
        assert group["id"] == GROUP
        rules = {(r["direction"], r["ethertype"]): r for r in group["security_group_rules"]}
        assert len(rules) == 4
        # the ids the virtual rules had before, so clients holding them still find them
        assert rules[("egress", "IPv4")]["id"] == "4c304090-3934-5e78-947c-e4110b6c0114"
        assert rules[("ingress", "IPv6")]["remote_group_id"] == GROUP
        assert rules[("egress", "IPv6")]["remote_group_id"] is None
    finally:
        get_engine(url).dispose()
