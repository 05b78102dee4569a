"""Volumes: create (blank, from an image, from a volume), read, update, grow, delete.

Creating is synchronous: the row is written ``creating`` first (so a crash
leaves a visible volume in a known state, never a file nobody knows), the
bytes are made, and only then does the volume become ``available``. Every
later change is a conditional UPDATE on the status it needs.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select, update

from transcell import exception
from transcell.context import RequestContext
from transcell.db.types import utcnow
from transcell.registry import services
from transcell.volume import backends as vb
from transcell.volume import exceptions as vexc
from transcell.volume import models as vm
from transcell.volume import views
from transcell.volume.records import Records

LOG = logging.getLogger(__name__)

#: what ``update`` may change, and nothing else
UPDATABLE = {"name", "description", "metadata", "bootable", "readonly"}
DELETABLE = (vm.AVAILABLE, vm.ERROR, vm.ERROR_EXTENDING, "error_restoring",
             "error_managing")
#: what os-reset_status may set (Cinder's list)
RESETTABLE = (vm.AVAILABLE, vm.ERROR, vm.CREATING, vm.DELETING, vm.IN_USE, vm.ATTACHING,
              "detaching", vm.ERROR_DELETING, vm.ERROR_EXTENDING, vm.RESERVED,
              vm.MAINTENANCE)
GIB = 1024 ** 3
#: what a backend's filesystem answers a size it cannot hold
TOO_BIG = (errno.EFBIG, errno.EINVAL, errno.ENOSPC)
IMAGE_PROPERTIES = ("id", "name", "disk_format", "container_format", "min_disk",
                    "min_ram", "size", "checksum")


def kept_image_id(volume_id: str) -> str:
    """The hidden image holding a volume's chunks since its last migration."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"transcell-volume-kept:{volume_id}"))


def data_op(name: str) -> Callable[..., Any]:
    """One function of ``transcell.volume.data`` (the volume bytes live there)."""
    from transcell.volume import data
    return getattr(data, name)


def background(name: str, work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` after the request returns (Cinder answers 202 and works on)."""
    def run() -> None:
        try:
            work()
        except Exception:
            LOG.exception("%s failed", name)
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class Volumes(Records):
    def get(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        with self.session() as s:
            return self._body(s, self.load(s, ctx, volume_id))

    def list(self, ctx: RequestContext, all_projects: bool = False,
             project_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first (Cinder's default order); the caller's project unless an
        administrator asks for every project (or one named project)."""
        with self.session() as s:
            query = select(vm.Volume).order_by(vm.Volume.created_at.desc(),
                                               vm.Volume.id.desc())
            if project_id and ctx.is_admin:
                query = query.where(vm.Volume.project_id == project_id)
            elif not (all_projects and ctx.is_admin):
                query = query.where(vm.Volume.project_id == ctx.project_id)
            rows = list(s.scalars(query))
            attachments: dict[str, list[vm.VolumeAttachment]] = {}
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):  # bounded IN lists
                for att in s.scalars(select(vm.VolumeAttachment).where(
                        vm.VolumeAttachment.volume_id.in_(ids[start:start + 500]))
                        .order_by(vm.VolumeAttachment.created_at, vm.VolumeAttachment.id)):
                    attachments.setdefault(att.volume_id, []).append(att)
            return [views.volume(row, attachments.get(row.id, [])) for row in rows]

    # -- create -----------------------------------------------------------------------
    def create(self, ctx: RequestContext, *, size: int | None, name: str | None = None,
               description: str | None = None, volume_type: str | None = None,
               image_id: str | None = None, source_volid: str | None = None,
               availability_zone: str | None = None, metadata: dict[str, str] | None = None,
               bootable: bool | None = None, multiattach: bool = False,
               project_id: str | None = None, user_id: str | None = None,
               snapshot_id: str | None = None) -> dict[str, Any]:
        if snapshot_id and (source_volid or image_id):
            raise vexc.InvalidInput(reason="A volume is made from one of a snapshot, a "
                                           "volume or an image, not several.")
        snap = self.snapshot_source(ctx, snapshot_id) if snapshot_id else None
        if snap is not None:
            size = snap["size"] if size is None else size
            if isinstance(size, int) and not isinstance(size, bool) and size < snap["size"]:
                raise vexc.InvalidInput(reason=f"Volume size '{size}'GB cannot be smaller "
                                               f"than the snapshot size {snap['size']}GB. "
                                               "They must be >= original snapshot size.")
            volume_type = volume_type or snap["volume_type"]
        source = self.get(ctx, source_volid) if source_volid else None
        if source is not None and source["status"] not in (vm.AVAILABLE, vm.IN_USE):
            raise vexc.InvalidVolume(reason=f"source volume {source_volid} status must be "
                                            f"available or in-use, but it is "
                                            f"{source['status']}")
        if size is None and source is not None:
            size = source["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise vexc.InvalidInput(reason=f"Size must be an integer and greater than 0, "
                                           f"not {size!r}")
        if source is not None and size < source["size"]:
            raise vexc.InvalidInput(reason=f"Volume size {size}GB cannot be smaller than "
                                           f"the source volume size {source['size']}GB.")
        if volume_type:
            vtype = vb.find_type(volume_type)
        elif source is not None:
            vtype = vb.find_type(source["volume_type"])
        else:
            vtype = vb.default_type()
        if project_id and project_id != ctx.project_id and not ctx.is_admin:
            raise vexc.PolicyNotAuthorized(action="create a volume for another project")
        owner = ctx
        if project_id and project_id != ctx.project_id:
            # a service creating for a user: images are read with the owner's rights
            owner = RequestContext(user_id=user_id or ctx.user_id, project_id=project_id,
                                   roles=["member", "reader"], request_id=ctx.request_id)
        image = self._image_for(owner, image_id, size) if image_id else None
        with self.session() as s:
            row = vm.Volume(project_id=project_id or ctx.project_id or "",
                            user_id=user_id or ctx.user_id or "", name=name,
                            description=description, size=size, status=vm.CREATING,
                            volume_type=vtype.name, backend=vtype.backend,
                            availability_zone=availability_zone or "nova",
                            bootable=bool(bootable or image is not None
                                          or (source and source["bootable"] == "true")
                                          or (snap and snap["bootable"])),
                            snapshot_id=snapshot_id,
                            multiattach=bool(multiattach), source_volid=source_volid,
                            image_id=image_id, metadata_=dict(metadata or {}),
                            image_metadata=image or (
                                source or {}).get("volume_image_metadata") or (
                                snap or {}).get("image_metadata") or {})
            s.add(row)
        path = vb.backend(row.backend).path(row.id)
        try:
            if image is not None:
                data_op("from_image")(owner, image_id, path, size)
            elif source is not None:
                self._clone_from(ctx, source_volid, path, size)
            elif snap is not None:
                data_op("clone")(snap["path"], path)
                data_op("resize")(path, size)
            else:
                data_op("create_blank")(path, size)
        except (ValueError, exception.Invalid, exception.NotFound, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in TOO_BIG:
                raise self._failed(ctx, row.id, exc) from exc
            # the image, source or size could not make this volume: as if never asked
            with self.session() as s:
                s.execute(delete(vm.Volume).where(vm.Volume.id == row.id,
                                                  vm.Volume.status == vm.CREATING))
            if isinstance(exc, OSError):
                raise vexc.InvalidInput(reason=f"Volume size {size}GB is more than backend "
                                               f"{row.backend} can hold.") from exc
            raise vexc.InvalidInput(reason=str(exc)) from exc
        except Exception as exc:
            raise self._failed(ctx, row.id, exc) from exc
        with self.session() as s:
            self._set_status(s, row.id, vm.CREATING, vm.AVAILABLE)
            return self._body(s, self.load(s, ctx, row.id))

    def _failed(self, ctx: RequestContext, volume_id: str, exc: Exception) -> Exception:
        """A volume whose bytes could not be made is left in ``error`` (as Cinder's)."""
        LOG.error("creating volume %s failed: %s", volume_id, exc, exc_info=exc)
        with self.session() as s:
            self._set_status(s, volume_id, vm.CREATING, vm.ERROR)
        if isinstance(exc, exception.TranscellError) and exc.code < 500:
            return exc
        return vexc.VolumeDataError(reason=f"the data of volume {volume_id} could not be "
                                           f"made")

    @staticmethod
    def _set_status(s, volume_id: str, expected: str, new: str) -> bool:
        """Housekeeping transitions of the service itself (no caller to check)."""
        return s.execute(update(vm.Volume).where(
            vm.Volume.id == volume_id, vm.Volume.status == expected).values(
            status=new, updated_at=utcnow())).rowcount == 1

    def _image_for(self, ctx: RequestContext, image_id: str, size: int) -> dict[str, Any]:
        try:
            image = services.image.get(ctx, image_id)
        except exception.NotFound:
            raise vexc.InvalidInput(reason=f"Image {image_id} could not be found.") from None
        if not ctx.is_admin and image.get("visibility") not in (
                "public", "community", "shared") and image.get("owner") != ctx.project_id:
            raise vexc.InvalidInput(reason=f"Image {image_id} could not be found.")
        if image.get("status") != "active":
            raise vexc.InvalidInput(reason=f"Image {image_id} is not active.")
        min_disk = int(image.get("min_disk") or 0)
        image_bytes = int(image.get("virtual_size") or image.get("size") or 0)
        if size < min_disk or size * GIB < image_bytes:
            raise vexc.InvalidInput(
                reason=f"Volume size {size}GB is smaller than what image {image_id} needs "
                       f"(min_disk {min_disk}GB, {image_bytes} bytes).")
        meta = {("image_id" if key == "id" else "image_name" if key == "name" else key):
                image.get(key) for key in IMAGE_PROPERTIES}
        return meta

    def _clone_from(self, ctx: RequestContext, source_id: str, path: str, size: int) -> None:
        with self.session() as s:
            source = self.load(s, ctx, source_id)
            src_path = vb.backend(source.backend).path(source.id)
        data_op("clone")(src_path, path)
        data_op("resize")(path, size)

    # -- update -----------------------------------------------------------------------
    def update(self, ctx: RequestContext, volume_id: str, changes: dict[str, Any]
               ) -> dict[str, Any]:
        unknown = sorted(set(changes) - UPDATABLE)
        if unknown:
            raise vexc.InvalidInput(reason=f"cannot update {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in changes.items():
            values["metadata_" if key == "metadata" else key] = value
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, migrating=None, action="updated", **values)
            if "readonly" in changes:  # shown as Cinder shows it, "True" or "False"
                row.admin_metadata = {**(row.admin_metadata or {}),
                                      "readonly": str(bool(changes["readonly"]))}
                s.flush()
            return self._body(s, row)

    def update_metadata(self, ctx: RequestContext, volume_id: str,
                        changes: dict[str, str] | None = None, replace: bool = False,
                        remove: tuple[str, ...] = ()) -> dict[str, str]:
        """Merge (or replace with) ``changes`` and drop ``remove``, atomically: the row
        is taken by the conditional UPDATE before its metadata is read."""
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, migrating=None, action="updated")
            current = {} if replace else dict(row.metadata_ or {})
            missing = [key for key in remove if key not in current]
            if missing:
                raise vexc.MetadataNotFound(volume_id=volume_id, key=missing[0])
            for key in remove:
                current.pop(key)
            current.update(changes or {})
            row.metadata_ = current
            return dict(current)

    def reset_status(self, ctx: RequestContext, volume_id: str, status: str | None = None,
                     attach_status: str | None = None,
                     migration_status: str | None = None) -> dict[str, Any]:
        """Administrators' way out of a stuck state; nothing but the record changes."""
        values: dict[str, Any] = {}
        if status is not None:
            if status not in RESETTABLE:
                raise vexc.InvalidInput(reason=f"status {status} is not one of "
                                               f"{', '.join(RESETTABLE)}")
            values["status"] = status
        if attach_status is not None:
            if attach_status not in (vm.ATTACHED, vm.DETACHED):
                raise vexc.InvalidInput(reason="attach_status must be attached or detached")
            values["attach_status"] = attach_status
        if migration_status is not None:
            values["migration_status"] = None if migration_status == "none" \
                else migration_status
        if not values:
            raise vexc.InvalidInput(reason="Must specify 'status', 'attach_status' or "
                                           "'migration_status' for update.")
        with self.session() as s:
            self.cas(s, ctx, volume_id, migrating=None, action="reset", **values)
            return self._body(s, self.load(s, ctx, volume_id))

    # -- extend -----------------------------------------------------------------------
    def extend(self, ctx: RequestContext, volume_id: str, new_size: int,
               allow_in_use: bool = False) -> dict[str, Any]:
        if isinstance(new_size, bool) or not isinstance(new_size, int) or new_size <= 0:
            raise vexc.InvalidInput(reason=f"New volume size must be specified as an "
                                           f"integer, not {new_size!r}")
        allowed = [vm.AVAILABLE, vm.IN_USE] if allow_in_use else [vm.AVAILABLE]
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
            if new_size <= row.size:
                raise vexc.InvalidInput(reason=f"New size for extend must be greater than "
                                               f"current size. (current: {row.size}, "
                                               f"extended: {new_size}).")
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=allowed, action="extended",
                           status=vm.EXTENDING)
        return self._finish_extend(ctx, row, new_size)

    def _finish_extend(self, ctx: RequestContext, row: vm.Volume, new_size: int
                       ) -> dict[str, Any]:
        back = vm.IN_USE if row.attach_status == vm.ATTACHED else vm.AVAILABLE
        try:
            data_op("resize")(vb.backend(row.backend).path(row.id), new_size)
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in TOO_BIG:
                with self.session() as s:  # refused as too big: the volume as it was
                    self._set_status(s, row.id, vm.EXTENDING, back)
                raise vexc.InvalidInput(reason=f"New size {new_size}GB is more than "
                                               f"backend {row.backend} can hold.") from exc
            with self.session() as s:
                self._set_status(s, row.id, vm.EXTENDING, vm.ERROR_EXTENDING)
            raise vexc.VolumeDataError(reason=f"volume {row.id} could not grow") from exc
        with self.session() as s:
            self.cas(s, ctx, row.id, expect=[vm.EXTENDING], migrating=None,
                     size=new_size, status=back)
            return self._body(s, self.load(s, ctx, row.id))

    # -- upload to image ----------------------------------------------------------------
    def upload_to_image(self, ctx: RequestContext, volume_id: str, *, image_name: str,
                        disk_format: str = "raw", container_format: str = "bare",
                        visibility: str = "private", protected: bool = False,
                        force: bool = False) -> dict[str, Any]:
        """Make an image of the volume (Cinder answers 202; the upload goes on after).

        The image is made first with the caller's rights, so a caller who may not
        create it gets the image service's refusal before the volume changes.
        """
        allowed = [vm.AVAILABLE, vm.IN_USE] if force else [vm.AVAILABLE]
        with self.session() as s:
            row = self.load(s, ctx, volume_id)
            if row.status not in allowed:
                raise vexc.InvalidVolume(reason=f"Volume {volume_id} status must be "
                                                f"{' or '.join(allowed)} to be uploaded, "
                                                f"but it is {row.status}")
        image = services.image.create(ctx, name=image_name, disk_format=disk_format,
                                      container_format=container_format,
                                      visibility=visibility, protected=protected)
        try:
            with self.session() as s:
                row = self.cas(s, ctx, volume_id, expect=allowed, action="uploaded",
                               status=vm.UPLOADING)
        except Exception:
            with contextlib.suppress(Exception):
                services.image.delete(ctx, image["id"])
            raise
        back = vm.IN_USE if row.attach_status == vm.ATTACHED else vm.AVAILABLE
        path = vb.backend(row.backend).path(row.id)

        def work() -> None:
            try:
                data_op("to_image")(ctx, path, image["id"], disk_format)
            except Exception:
                LOG.exception("uploading volume %s to image %s failed", volume_id,
                              image["id"])
                with contextlib.suppress(Exception):
                    services.image.delete(ctx, image["id"])
            finally:
                with self.session() as s:
                    self._set_status(s, volume_id, vm.UPLOADING, back)
        background(f"upload-volume-{volume_id}", work)
        return {"id": row.id, "updated_at": views.timestamp(row.updated_at),
                "status": vm.UPLOADING, "display_description": row.description,
                "size": row.size, "volume_type": {"name": row.volume_type},
                "image_id": image["id"], "container_format": container_format,
                "disk_format": disk_format, "image_name": image_name,
                "protected": protected, "visibility": visibility}

    # -- delete -----------------------------------------------------------------------
    def delete(self, ctx: RequestContext, volume_id: str, force: bool = False,
               cascade: bool = False) -> None:
        """Delete the volume and its file. ``force`` (an administrator's
        os-force_delete) takes it in any status, under migration too, but never while
        a host has it attached. A volume with snapshots is refused (Cinder's rule)
        unless ``cascade``, which deletes them first."""
        if cascade:
            for snap in self.list_snapshots(ctx, all_projects=True, volume_id=volume_id):
                if snap["status"] not in ("available", "error"):
                    raise vexc.InvalidVolume(reason=f"Snapshot {snap['id']} of volume "
                                                    f"{volume_id} is {snap['status']}; "
                                                    "it cannot be deleted with it")
            with self.session() as s:
                self.cas(s, ctx, volume_id, expect=None if force else DELETABLE,
                         migrating=None if force else False, action="deleted")
            for snap in self.list_snapshots(ctx, all_projects=True, volume_id=volume_id):
                self.delete_snapshot(ctx, snap["id"])
        with self.session() as s:
            row = self.cas(s, ctx, volume_id, expect=None if force else DELETABLE,
                           migrating=None if force else False, action="deleted",
                           status=vm.DELETING)
            attachments = self.attachments_of(s, volume_id)
            if any(att.status == vm.ATTACHED for att in attachments) or (
                    attachments and not force):
                raise vexc.InvalidVolume(reason=f"volume {volume_id} has attachments; "
                                                "delete them first")
            if row.attach_status == vm.ATTACHED:
                raise vexc.InvalidVolume(reason=f"volume {volume_id} is attached")
            count = self.snapshot_count(s, volume_id)
            if count:
                raise vexc.InvalidVolume(reason=f"Volume {volume_id} still has {count} "
                                                "dependent snapshots.")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(vb.backend(row.backend).path(row.id))
        except OSError as exc:
            with self.session() as s:
                self._set_status(s, volume_id, vm.DELETING, vm.ERROR_DELETING)
            raise vexc.VolumeDataError(reason=f"volume {volume_id}'s file could not be "
                                              f"removed") from exc
        with contextlib.suppress(Exception):  # chunks kept for its next migration
            data_op("drop_kept")(ctx, kept_image_id(volume_id))
        with self.session() as s:
            # files a move or migration recorded beside the volume go with it
            for copy in s.scalars(select(vm.VolumeCopy).where(
                    vm.VolumeCopy.volume_id == volume_id)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(copy.path)
                s.delete(copy)
            s.execute(vm.VolumeAttachment.__table__.delete().where(
                vm.VolumeAttachment.volume_id == volume_id))
            s.execute(vm.Volume.__table__.delete().where(
                vm.Volume.id == volume_id, vm.Volume.status == vm.DELETING))

