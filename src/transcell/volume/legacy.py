"""Cinder's attach actions from before the attachments API (os-reserve ... os-detach).

Older clients and Tempest's volume tests still use them; transcell's compute
side uses the attachments API. They keep the same records: ``os-attach``
makes an attachment that is already attached, ``os-detach`` deletes one, and
``os-initialize_connection`` answers only a host whose cell reaches the
volume's backend.
"""

from __future__ import annotations

from typing import Any

from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume import views
from transcell.volume.attachments import Attachments


class LegacyAttach(Attachments):
    def reserve(self, ctx: RequestContext, volume_id: str) -> None:
        with self.session() as s:
            self.cas(s, ctx, volume_id, expect=[vm.AVAILABLE], action="reserved",
                     status=vm.ATTACHING)

    def unreserve(self, ctx: RequestContext, volume_id: str) -> None:
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=[vm.ATTACHING], migrating=None,
                           action="unreserved")
            self._settle_legacy(s, row)

    def _settle_legacy(self, s, row: vm.Volume) -> None:
        remaining = self.attachments_of(s, row.id)
        if row.status in (vm.ATTACHING, vm.DETACHING) and not remaining:
            row.status, row.attach_status, row.updated_at = vm.AVAILABLE, vm.DETACHED, utcnow()
        else:
            self._settle(row, remaining)

    def begin_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        with self.session() as s:
            self.cas(s, ctx, volume_id, expect=[vm.IN_USE], migrating=None,
                     action="detached", status=vm.DETACHING)

    def roll_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        with self.session() as s:
            self.cas(s, ctx, volume_id, expect=[vm.DETACHING], migrating=None,
                     action="rolled back", status=vm.IN_USE)

    def attach(self, ctx: RequestContext, volume_id: str, instance_uuid: str | None,
               mountpoint: str, mode: str = "rw", host_name: str | None = None
               ) -> dict[str, Any]:
        if not instance_uuid and not host_name:
            raise vexc.InvalidInput(reason="os-attach needs instance_uuid or host_name")
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=[vm.AVAILABLE, vm.ATTACHING, vm.IN_USE],
                           migrating=None, action="attached")
            existing = self.attachments_of(s, volume_id)
            if existing and not row.multiattach:
                raise vexc.InvalidVolume(reason=f"volume {volume_id} is already attached "
                                                "and is not multiattach")
            att = vm.VolumeAttachment(volume_id=volume_id,
                                      instance_uuid=instance_uuid or "",
                                      status=vm.ATTACHED, attach_mode=mode,
                                      attached_host=host_name, mountpoint=mountpoint,
                                      attached_at=utcnow())
            s.add(att)
            s.flush()
            row.status = vm.IN_USE  # _settle leaves an 'attaching' reservation alone
            self._settle(row, [*existing, att])
            return views.attachment(row, att, None)

    def detach(self, ctx: RequestContext, volume_id: str,
               attachment_id: str | None = None, force: bool = False) -> None:
        """Drop an attachment (the only one, or the one named); with nothing to drop
        nothing changes, as Cinder's asynchronous detach leaves it. ``force`` (an
        administrator's os-force_detach) works in any status but creating and deleting,
        and leaves the volume as its remaining attachments make it."""
        expect = None if force else [vm.IN_USE, vm.DETACHING, vm.ATTACHING, vm.RESERVED,
                                     vm.AVAILABLE]
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=expect, migrating=None,
                           action="detached")
            if row.status in (vm.CREATING, vm.DELETING):
                raise vexc.InvalidVolume(reason=f"volume {volume_id} is {row.status}")
            existing = self.attachments_of(s, volume_id)
            if attachment_id is not None:
                chosen = [att for att in existing if att.id == attachment_id]
                if not chosen:
                    raise vexc.VolumeAttachmentNotFound(attachment_id=attachment_id)
            elif len(existing) > 1:
                raise vexc.InvalidVolume(reason=f"volume {volume_id} has several "
                                                "attachments: name the attachment_id")
            else:
                chosen = existing
            if not chosen:
                return
            for att in chosen:
                s.delete(att)
            s.flush()
            if row.status == vm.DETACHING or force:
                row.status = vm.IN_USE
            self._settle_legacy(s, row)

    def initialize_connection(self, ctx: RequestContext, volume_id: str,
                              connector: dict[str, Any]) -> dict[str, Any]:
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
        self._check_reach(row, connector)
        return views.connection_info(row, vm.VolumeAttachment(attach_mode="rw"))
