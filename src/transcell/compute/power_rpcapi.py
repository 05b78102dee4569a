"""RPC messages (since 1.3) to a compute host about a guest where it runs.

State changes are casts, as Nova's are: the API records the task state and the
action before it answers 202, and a host that restarts finishes what its servers
still show (``PowerOperations._resume_power_work``). What the user waits for an
answer to (a password set, the console, the counters) is a call.
"""

from __future__ import annotations

from typing import Any

from transcell.compute.rpcapi import ComputeAPI, topic_for
from transcell.context import RequestContext

VERSION = "1.3"


class PowerComputeAPI(ComputeAPI):
    def _cast(self, ctx: RequestContext, host: str, method: str, **kwargs: Any) -> None:
        self._bus(host).cast(ctx, topic_for(host), method, rpc_version=VERSION, **kwargs)

    def _call(self, ctx: RequestContext, host: str, method: str, **kwargs: Any) -> Any:
        return self._bus(host).call(ctx, topic_for(host), method, rpc_version=VERSION,
                                    **kwargs)

    def reboot_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                        reboot_type: str) -> None:
        """``reboot_type`` "SOFT" or "HARD"."""
        self._cast(ctx, host, "reboot_instance", instance_uuid=instance_uuid,
                   reboot_type=reboot_type)

    def pause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "pause_instance", instance_uuid=instance_uuid)

    def unpause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "unpause_instance", instance_uuid=instance_uuid)

    def suspend_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "suspend_instance", instance_uuid=instance_uuid)

    def resume_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "resume_instance", instance_uuid=instance_uuid)

    def rescue_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                        rescue_password: str | None, rescue_image_ref: str | None) -> None:
        """Boot from ``rescue_image_ref`` (the server's own image when None)."""
        self._cast(ctx, host, "rescue_instance", instance_uuid=instance_uuid,
                   rescue_password=rescue_password, rescue_image_ref=rescue_image_ref)

    def unrescue_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "unrescue_instance", instance_uuid=instance_uuid)

    def soft_delete_instance(self, ctx: RequestContext, host: str,
                             instance_uuid: str) -> None:
        self._cast(ctx, host, "soft_delete_instance", instance_uuid=instance_uuid)

    def restore_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        self._cast(ctx, host, "restore_instance", instance_uuid=instance_uuid)

    def set_admin_password(self, ctx: RequestContext, host: str, instance_uuid: str,
                           new_pass: str) -> None:
        """A call: a guest that cannot take the password is the user's 409."""
        self._call(ctx, host, "set_admin_password", instance_uuid=instance_uuid,
                   new_pass=new_pass)

    def get_console_output(self, ctx: RequestContext, host: str, instance_uuid: str,
                           tail_length: int | None) -> str:
        """The last ``tail_length`` lines of the console log (all of it when None)."""
        return self._call(ctx, host, "get_console_output", instance_uuid=instance_uuid,
                          tail_length=tail_length)

    def get_instance_diagnostics(self, ctx: RequestContext, host: str,
                                 instance_uuid: str) -> dict:
        return self._call(ctx, host, "get_instance_diagnostics", instance_uuid=instance_uuid)
