"""The unmodified ``openstack`` CLI on a server's everyday actions."""

from __future__ import annotations

import pytest
from powerhelpers import OTHER, USER, force_delete

pytestmark = pytest.mark.cli


def test_everyday_actions_with_the_cli(pcloud):
    created = pcloud.openstack_json("server", "create", "--flavor", "m1.tiny", "--image",
                                    "transcell-base", "--network", "private", "--wait",
                                    "cli-power", cloud=USER)
    sid = created["id"]
    try:
        pcloud.openstack("server", "reboot", "--hard", "--wait", "cli-power", cloud=USER)
        pcloud.openstack("server", "pause", "cli-power", cloud=USER)
        pcloud.wait_status(sid, "PAUSED")

        log = pcloud.openstack("console", "log", "show", "--lines", "4", "cli-power",
                               cloud=USER).stdout
        assert "guest paused" in log
        assert len(log.rstrip("\n").split("\n")) <= 4
        whole = pcloud.openstack("console", "log", "show", "cli-power", cloud=USER).stdout
        assert whole.count("--- hard reboot ---") == 1 and "login:" in whole

        pcloud.openstack("--os-compute-api-version", "2.73", "server", "lock", "--reason",
                         "audit", "cli-power", cloud=USER)
        shown = pcloud.openstack_json("--os-compute-api-version", "2.73", "server", "show",
                                      "cli-power", cloud=USER)
        assert shown["locked"] is True and shown["locked_reason"] == "audit"
        # another project's member sees no such server; this one's is held back
        other = pcloud.openstack("server", "unpause", sid, cloud=OTHER, check=False)
        assert other.returncode != 0 and "No Server found" in other.stderr
        refused = pcloud.openstack("server", "unpause", "cli-power", cloud=USER, check=False)
        assert refused.returncode != 0 and "is locked" in refused.stderr
        pcloud.openstack("server", "unlock", "cli-power", cloud=USER)
        pcloud.openstack("server", "unpause", "cli-power", cloud=USER)
        pcloud.wait_status(sid, "ACTIVE")

        events = pcloud.openstack_json("server", "event", "list", "cli-power", cloud=USER)
        assert [e["Action"] for e in events][:5] == ["unpause", "unlock", "lock", "pause",
                                                     "reboot"]

        # delete is soft in this cloud: restore with the CLI, then delete for good
        pcloud.openstack("server", "delete", "cli-power", cloud=USER)
        pcloud.wait_status(sid, "SOFT_DELETED")
        pcloud.openstack("server", "restore", "cli-power", cloud=USER)
        pcloud.wait_status(sid, "ACTIVE")
    finally:
        force_delete(pcloud, sid)
