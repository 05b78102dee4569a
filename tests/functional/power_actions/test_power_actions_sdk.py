"""The everyday server actions through openstacksdk, as applications call them."""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exceptions
from powerhelpers import USER, boot, force_delete


def test_everyday_actions_with_openstacksdk(pcloud):
    sid = boot(pcloud, "sdk-power")["id"]
    conn = pcloud.sdk(USER)
    admin = pcloud.sdk()
    try:
        conn.compute.reboot_server(sid, "HARD")
        pcloud.wait_status(sid, "ACTIVE")
        conn.compute.pause_server(sid)
        server = pcloud.wait_status(sid, "PAUSED")
        assert server["OS-EXT-STS:power_state"] == 3
        conn.compute.unpause_server(sid)
        pcloud.wait_status(sid, "ACTIVE")
        conn.compute.suspend_server(sid)
        pcloud.wait_status(sid, "SUSPENDED")
        conn.compute.resume_server(sid)
        pcloud.wait_status(sid, "ACTIVE")

        output = conn.compute.get_server_console_output(sid, length=5)["output"]
        assert len(output.split("\n")) == 5 and "PM: resumed" in output
        conn.compute.change_server_password(sid, "sdk-s3cret")
        assert conn.compute.get_server_password(sid) == ""

        conn.compute.lock_server(sid, locked_reason="sdk")
        with pytest.raises(sdk_exceptions.ConflictException):
            conn.compute.pause_server(sid)
        admin.compute.unlock_server(sid)

        diagnostics = admin.compute.get_server_diagnostics(sid)
        assert diagnostics.num_cpus == 1 and diagnostics.state == "running"
        with pytest.raises(sdk_exceptions.ForbiddenException):
            conn.compute.get_server_diagnostics(sid)

        conn.compute.rescue_server(sid, admin_pass="sdk-rescue")
        pcloud.wait_status(sid, "RESCUE")
        conn.compute.unrescue_server(sid)
        pcloud.wait_status(sid, "ACTIVE")

        admin.compute.reset_server_state(sid, "error")
        assert pcloud.wait_status(sid, "ERROR")["OS-EXT-STS:vm_state"] == "error"
        admin.compute.reset_server_state(sid, "active")
        pcloud.wait_status(sid, "ACTIVE")
    finally:
        force_delete(pcloud, sid)
