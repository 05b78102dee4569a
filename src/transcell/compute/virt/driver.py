"""The contract between a compute host agent and the hypervisor it drives.

The compute manager only ever talks to a guest through these methods, so the
fake driver (real disks, simulated guest) and a real qemu driver are
interchangeable underneath the same build, power and move flows.

Rules every driver keeps, because the manager and the move sagas rely on them:

* Instances are named by uuid; everything returned is JSON-serialisable, since
  results travel over RPC.
* Every mutating method is idempotent: a step retried after a crash or a
  timeout must reach the same end state, not fail because half of it was
  already done.
* An operation on a guest the host does not have raises
  :class:`transcell.exception.InstanceNotFound`; disk trouble raises
  :class:`transcell.exception.DiskError`.
* Disks and guests have separate lifetimes: ``destroy(uuid, destroy_disks=False)``
  removes the guest and keeps its disks, which is how a moved server's source
  host holds its data until the move is confirmed (and how a revert comes back
  to it: ``spawn`` on a host that still has the disks reuses them).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TypedDict

FetchImage = Callable[[str, str], None]
"""``fetch_image(image_id, dest_path)``: write the whole image to ``dest_path``."""


class HostResources(TypedDict):
    vcpus: int
    memory_mb: int
    local_gb: int
    hypervisor_type: str
    hypervisor_version: int
    hypervisor_hostname: str


class VolumeEntry(TypedDict):
    volume_id: str
    device_name: str
    connection_info: dict
    attachment_id: str


class BlockDeviceInfo(TypedDict):
    root_volume: VolumeEntry | None
    volumes: list[VolumeEntry]


class ComputeDriver(abc.ABC):
    """What a compute host agent needs from a hypervisor."""

    @abc.abstractmethod
    def init_host(self) -> None:
        """Prepare the host at agent start-up and clear leftovers of a crashed process.

        Must be safe to call on every start; guests and disks of a previous run
        stay, so the agent can reconcile them against its database.
        """

    @abc.abstractmethod
    def get_available_resource(self) -> HostResources:
        """Total capacity of the host, reported to Placement as its inventory."""

    @abc.abstractmethod
    def list_instances(self) -> list[str]:
        """Uuids of the guests defined on this host (not of disks kept without a guest)."""

    @abc.abstractmethod
    def instance_exists(self, uuid: str) -> bool:
        """Whether a guest (not merely its disks) is defined for ``uuid``."""

    @abc.abstractmethod
    def spawn(self, instance: dict, image_meta: dict, fetch_image: FetchImage,
              disk_gb: int, power_on: bool = True,
              block_device_info: BlockDeviceInfo | None = None) -> None:
        """Create the guest and its root disk, and start it unless ``power_on`` is False.

        With ``block_device_info`` the guest gets those volumes attached; when
        it names a ``root_volume`` the guest boots from that volume and no local
        root disk is made (``image_meta`` and ``disk_gb`` are then unused).

        ``instance`` has at least ``uuid``, ``display_name``, ``vcpus`` and
        ``memory_mb``. ``image_meta`` has ``id`` and ``disk_format`` of the
        image to boot from; the driver calls ``fetch_image(image_id, path)``
        only when it does not already hold the image, and at most once per
        image however many spawns run at the same time. The root disk's
        virtual size is ``disk_gb`` GiB, or the image's size when ``disk_gb``
        is 0, and never smaller than the image.

        If the root disk for ``uuid`` already exists (a retried spawn, or a
        revert to a host that kept the disks) it is reused as it is; a disk
        built from a different image is an error, not silently replaced.
        """

    @abc.abstractmethod
    def power_off(self, uuid: str) -> None:
        """Stop the guest; already stopped is fine."""

    @abc.abstractmethod
    def power_on(self, uuid: str) -> None:
        """Start the guest; already running is fine."""

    @abc.abstractmethod
    def get_power_state(self, uuid: str) -> int:
        """One of :mod:`transcell.compute.virt.power_state`'s values."""

    @abc.abstractmethod
    def destroy(self, uuid: str, destroy_disks: bool = True) -> None:
        """Remove the guest, and its disks too when ``destroy_disks``.

        Never fails because the guest or the disks are already gone.
        """

    @abc.abstractmethod
    def get_disk_paths(self, uuid: str) -> dict[str, str]:
        """Disk files this host holds for ``uuid``, e.g. ``{"root": path}``; empty if none.

        Kept disks of a destroyed guest are included: they are still on the host.
        """

    @abc.abstractmethod
    def root_disk_path(self, uuid: str) -> str:
        """Path of the root disk, which must exist (DiskError otherwise).

        Callers read it with :mod:`transcell.compute.virt.disk`, e.g. to
        checksum it or flatten it for upload to the image store.
        """

    @abc.abstractmethod
    def root_disk_format(self, uuid: str) -> str:
        """Format of the root disk ("raw" or "qcow2"), to pass to the disk helpers.

        Passing it rather than letting qemu-img probe keeps a guest that writes
        a qcow2 header into a raw disk from changing how the host reads it.
        """

    @abc.abstractmethod
    def import_root_disk(self, uuid: str, path: str, disk_gb: int, fmt: str = "raw",
                         base_image_id: str | None = None) -> None:
        """Adopt ``path`` (moved away from the caller) as the root disk.

        A moved server's disk arrives from the image store: a flat raw file, or
        a qcow2 overlay on the cached ``base_image_id`` holding the chunks that
        differ from it. The driver keeps it in a form it can boot and grows it
        to ``disk_gb`` GiB when that is larger.
        """

    @abc.abstractmethod
    def restore_guest(self, instance: dict, power_on: bool) -> None:
        """Define the guest again around disks kept by ``destroy(destroy_disks=False)``.

        This is how a reverted or rolled-back move comes back on its source
        host: nothing is fetched, the kept disks are the server's data.
        """

    # the guest where it runs ----------------------------------------------------
    # What users do to a running guest without moving it. Each leaves the guest in
    # the power state the method names, and is idempotent like every other method.

    @abc.abstractmethod
    def reboot(self, uuid: str, reboot_type: str) -> None:
        """Restart the guest: "SOFT" asks it to, "HARD" resets it (and also starts a
        stopped, paused or suspended one). It ends running either way."""

    @abc.abstractmethod
    def pause(self, uuid: str) -> None:
        """Freeze the guest in memory (power state PAUSED)."""

    @abc.abstractmethod
    def unpause(self, uuid: str) -> None:
        """Let a paused guest run again."""

    @abc.abstractmethod
    def suspend(self, uuid: str) -> None:
        """Save the guest's memory to disk and stop it (power state SUSPENDED)."""

    @abc.abstractmethod
    def resume(self, uuid: str) -> None:
        """Bring a suspended guest back from its saved memory."""

    @abc.abstractmethod
    def rescue(self, uuid: str, image_meta: dict, fetch_image: FetchImage,
               rescue_password: str | None) -> None:
        """Boot the guest from ``image_meta`` (the rescue image) with its own root disk
        attached as a second disk, so a user can repair it; its root disk is kept."""

    @abc.abstractmethod
    def unrescue(self, uuid: str) -> None:
        """Boot the guest from its own root disk again and drop the rescue disk."""

    @abc.abstractmethod
    def set_admin_password(self, uuid: str, new_pass: str) -> None:
        """Set the guest's administrator password; the guest must be running."""

    @abc.abstractmethod
    def get_console_output(self, uuid: str) -> str:
        """Everything the guest wrote to its serial console, oldest first."""

    @abc.abstractmethod
    def get_instance_diagnostics(self, uuid: str) -> dict:
        """The guest's counters in the Compute API's 2.48 diagnostics shape (state,
        driver, uptime, num_cpus, memory_details, cpu_details, nic_details,
        disk_details, ...)."""

    def soft_delete(self, uuid: str) -> None:
        """Keep the guest and its disks but stop it, for a delete that may be undone."""
        self.power_off(uuid)

    def restore(self, uuid: str) -> None:
        """Undo ``soft_delete``."""
        self.power_on(uuid)

    def rebuild_root_disk(self, instance: dict, image_meta: dict, fetch_image: FetchImage,
                          disk_gb: int, preserve_ephemeral: bool = False,
                          power_on: bool = True) -> None:
        """Give the guest a new root disk made from ``image_meta``, in place (a rebuild).

        The guest keeps its definition and volumes; its ephemeral disk is kept
        when ``preserve_ephemeral``, else made again blank (``instance`` has
        ``ephemeral_gb``). The old root disk is gone afterwards. The guest ends
        running when ``power_on``, else stopped.
        """
        raise NotImplementedError

    def root_disk_image(self, uuid: str) -> str | None:
        """Id of the image the root disk is an overlay on, if it still reads through to it.

        Lets a move send only what the guest changed since that image; a driver
        that cannot tell returns None and its disks are uploaded whole.
        """
        return None

    def cached_image(self, image_meta: dict, fetch_image: FetchImage) -> str | None:
        """Path of the image in this host's cache, fetching it if needed; None if unsupported.

        A move's target builds on it when most of the moving disk is still that
        image, and then writes only the chunks that differ.
        """
        return None

    # pre-copy -----------------------------------------------------------------
    def freeze_root_disk(self, uuid: str) -> dict[str, str] | None:
        """Freeze the running guest's root disk as it is now; its later writes go on top.

        Returns ``{"path", "format"}`` of the frozen image, which no longer
        changes and whose own layer holds exactly what the guest wrote since
        the previous freeze. None: this driver cannot, and a move copies the
        disk only once the guest has stopped.
        """
        return None

    def settle_root_disk(self, uuid: str) -> bool:
        """Fold what ``freeze_root_disk`` layered back into the disk; False if nothing was."""
        return False

    def root_disk_own_extents(self, uuid: str) -> list[dict] | None:
        """The extents (``qemu-img map`` entries, ``depth`` 0 being the disk's own) the
        root disk holds over its image, read from layer metadata without reading data.

        Asked before a pre-copy freezes anything: a guest that wrote next to
        nothing since its image is not worth a round. None when this driver
        cannot tell, a raw disk (no layers) or a chain a pre-copy already froze
        (its top holds only the last round's writes): the move then pre-copies.
        """
        return None

    # volumes ------------------------------------------------------------------
    # A volume reaches a guest as connection info from the volume service; a file
    # backend's names the volume's file ({"data": {"device_path": ...}}). Drivers
    # that keep no volumes leave these unimplemented.

    def attach_volume(self, uuid: str, connection_info: dict, device_name: str) -> None:
        """Give the guest the volume; attaching the same volume again is fine."""
        raise NotImplementedError

    def detach_volume(self, uuid: str, volume_id: str) -> None:
        """Take the volume from the guest; never fails because it is already gone."""
        raise NotImplementedError

    def get_volumes(self, uuid: str) -> dict[str, dict]:
        """``{volume_id: {"device_path", "device_name", "root"}}`` of the guest's volumes."""
        return {}

    def root_volume(self, uuid: str) -> str | None:
        """Id of the volume the guest boots from, or None when its root disk is local."""
        return None

    def read_volume(self, uuid: str, volume_id: str, offset: int, length: int) -> bytes:
        """Bytes of an attached volume, read the way the guest reads them."""
        raise NotImplementedError

    def write_volume(self, uuid: str, volume_id: str, offset: int, data: bytes) -> None:
        """Write into an attached volume the way the guest writes."""
        raise NotImplementedError

    # what other services report -----------------------------------------------

    def record_external_event(self, uuid: str, event: dict) -> None:
        """Take note of an event another service sent about the guest (``name``,
        ``status``, ``tag``); a driver that needs nothing from them ignores them."""
        return None

    def volume_snapshot_create(self, uuid: str, volume_id: str, create_info: dict) -> None:
        """Snapshot an attached volume for the volume service (assisted snapshots of
        volumes kept as files the hypervisor writes)."""
        raise NotImplementedError

    def volume_snapshot_delete(self, uuid: str, volume_id: str, snapshot_id: str,
                               delete_info: dict) -> None:
        """Delete a snapshot ``volume_snapshot_create`` made."""
        raise NotImplementedError
