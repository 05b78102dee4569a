"""The fake driver's simulated guest as users act on it where it runs: reboot, pause,
suspend, rescue, its administrator password, its serial console and its counters.

Each guest keeps, beside ``guest.json``, a ``console.log`` the way a hypervisor keeps
a serial console log: every boot, reboot, pause, suspend and rescue appends what a
real guest would print, so ``os-getConsoleOutput`` reads a file that grows as the
guest lives, not a canned string. Rescue is real work too: the rescue image is
fetched into the host's image cache, as a real host must before it can boot from it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from transcell import exception, statefiles
from transcell.compute.virt import disk, power_state
from transcell.compute.virt.driver import FetchImage

#: What a booting guest prints to its console (one line each), after the line that
#: names the boot: enough lines that a caller asking for the last ten gets ten.
BOOT_LINES = (
    "SeaBIOS (version transcell-fake)",
    "Booting from Hard Disk...",
    "Linux version 6.1.0-fake (transcell) #1 SMP",
    "Command line: root=/dev/vda1 ro console=ttyS0",
    "Memory: {memory_mb} MB available",
    "smp: Brought up 1 node, {vcpus} CPUs",
    "EXT4-fs (vda1): mounted filesystem",
    "cloud-init: running modules for final",
    "Starting OpenBSD Secure Shell server...",
    "Reached target Multi-User System.",
    "{name} login:",
)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGuestOperations:
    """Mixed into FakeDriver, which provides the guest files and their locks."""

    host: str
    _lock_for: Callable[[str], threading.Lock]
    _load_guest: Callable[[str], dict]
    _guest_path: Callable[[str], str]
    _instance_dir: Callable[[str], str]
    _cached_image: Callable[[dict, FetchImage], tuple[str, str]]
    get_disk_paths: Callable[[str], dict[str, str]]
    get_volumes: Callable[[str], dict[str, dict]]

    # -- files --------------------------------------------------------------

    def _console_path(self, uuid: str) -> str:
        return os.path.join(self._instance_dir(uuid), "console.log")

    def console_write(self, uuid: str, *lines: str) -> None:
        """Append ``lines`` to the guest's console log, each stamped with the time."""
        if not os.path.isdir(self._instance_dir(uuid)):
            return
        stamp = _now()
        text = "".join(f"[{stamp}] {line}\n" for line in lines)
        fd = os.open(self._console_path(uuid), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def console_boot(self, uuid: str, guest: dict, why: str = "boot") -> None:
        """What a guest prints from power-on to its login prompt."""
        values = {"memory_mb": guest.get("memory_mb"), "vcpus": guest.get("vcpus"),
                  "name": guest.get("display_name") or uuid}
        self.console_write(uuid, f"--- {why} ---", *(line.format(**values)
                                                    for line in BOOT_LINES))

    def _save_guest(self, uuid: str, guest: dict) -> None:
        path = self._guest_path(uuid)
        guest["updated_at"] = _now()
        statefiles.write_atomic(path, json.dumps(guest, sort_keys=True),
                                tmp_path=disk.temp_path_for(path))

    def _change_guest(self, uuid: str, change: Callable[[dict], None]) -> dict:
        with self._lock_for(uuid):
            guest = self._load_guest(uuid)
            change(guest)
            self._save_guest(uuid, guest)
            return guest

    # -- power ----------------------------------------------------------------

    def reboot(self, uuid: str, reboot_type: str) -> None:
        def change(guest: dict) -> None:
            if reboot_type != "HARD" and guest.get("power_state") != power_state.RUNNING:
                raise exception.InstanceInvalidState(
                    action="reboot", instance_uuid=uuid, attr="power_state",
                    state=power_state.name(guest.get("power_state", 0)))
            guest["power_state"] = power_state.RUNNING
            guest["booted_at"] = time.time()
            guest["boots"] = int(guest.get("boots", 1)) + 1

        guest = self._change_guest(uuid, change)
        if reboot_type != "HARD":
            self.console_write(uuid, "reboot: Restarting system")
        self.console_boot(uuid, guest, f"{reboot_type.lower()} reboot")

    def _set_state(self, uuid: str, state: int, from_states: tuple[int, ...], line: str,
                   what: str) -> None:
        """Move the guest to ``state``; already there is fine (idempotent), any state
        but ``from_states`` is refused as a real hypervisor refuses it."""
        def change(guest: dict) -> None:
            current = guest.get("power_state")
            if current == state:
                return
            if current not in from_states:
                raise exception.InstanceInvalidState(
                    action=what, instance_uuid=uuid, attr="power_state",
                    state=power_state.name(current or 0))
            guest["power_state"] = state

        self._change_guest(uuid, change)
        self.console_write(uuid, line)

    def pause(self, uuid: str) -> None:
        self._set_state(uuid, power_state.PAUSED, (power_state.RUNNING,),
                        "guest paused", "pause")

    def unpause(self, uuid: str) -> None:
        self._set_state(uuid, power_state.RUNNING, (power_state.PAUSED,),
                        "guest resumed from pause", "unpause")

    def suspend(self, uuid: str) -> None:
        self._set_state(uuid, power_state.SUSPENDED, (power_state.RUNNING,),
                        "PM: suspending system, memory saved to disk", "suspend")

    def resume(self, uuid: str) -> None:
        self._set_state(uuid, power_state.RUNNING, (power_state.SUSPENDED,),
                        "PM: resumed from saved memory", "resume")

    # -- rescue ---------------------------------------------------------------

    def rescue(self, uuid: str, image_meta: dict, fetch_image: FetchImage,
               rescue_password: str | None) -> None:
        if image_meta.get("id"):
            self._cached_image(image_meta, fetch_image)

        def change(guest: dict) -> None:
            guest["rescue"] = {"image_id": image_meta.get("id"),
                               "password_sha256": _digest(rescue_password)}
            guest["power_state"] = power_state.RUNNING
            guest["booted_at"] = time.time()

        guest = self._change_guest(uuid, change)
        self.console_boot(uuid, guest, f"rescue boot from image {image_meta.get('id')}")

    def unrescue(self, uuid: str) -> None:
        def change(guest: dict) -> None:
            guest.pop("rescue", None)
            guest["power_state"] = power_state.RUNNING
            guest["booted_at"] = time.time()

        guest = self._change_guest(uuid, change)
        self.console_boot(uuid, guest, "boot from own disk after rescue")

    def is_rescued(self, uuid: str) -> bool:
        return "rescue" in self._load_guest(uuid)

    # -- password, console, counters ------------------------------------------

    def set_admin_password(self, uuid: str, new_pass: str) -> None:
        def change(guest: dict) -> None:
            if guest.get("power_state") != power_state.RUNNING:
                raise exception.InstancePasswordSetFailed(
                    instance=uuid, reason="the guest is not running")
            guest["admin_password_sha256"] = _digest(new_pass)

        self._change_guest(uuid, change)
        self.console_write(uuid, "guest agent: administrator password changed")

    def admin_password_matches(self, uuid: str, password: str) -> bool:
        return self._load_guest(uuid).get("admin_password_sha256") == _digest(password)

    def get_console_output(self, uuid: str) -> str:
        self._load_guest(uuid)
        try:
            with open(self._console_path(uuid), encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def get_instance_diagnostics(self, uuid: str) -> dict[str, Any]:
        """The API's diagnostics field ``driver`` is an enum of real drivers; the fake
        one stands in for a libvirt/qemu host, as Nova's own fake driver does."""
        guest = self._load_guest(uuid)
        state = guest.get("power_state", power_state.NOSTATE)
        booted = guest.get("booted_at") or _epoch(guest.get("created_at"))
        disks = [path for path in self.get_disk_paths(uuid).values()]
        disks += [v.get("device_path") for v in self.get_volumes(uuid).values()
                  if v.get("device_path")]
        vcpus = int(guest.get("vcpus") or 0)
        running = state == power_state.RUNNING
        uptime = int(time.time() - booted) if running and booted else 0
        return {
            "state": power_state.name(state),
            "driver": "libvirt",
            "hypervisor": "qemu",
            "hypervisor_os": "linux",
            "uptime": uptime,
            "config_drive": False,
            "num_cpus": vcpus,
            "num_disks": len(disks),
            "num_nics": 0,
            "memory_details": {"maximum": int(guest.get("memory_mb") or 0),
                               "used": int(guest.get("memory_mb") or 0) if running else 0},
            "cpu_details": [{"id": i, "time": uptime * 10 ** 9, "utilisation": None}
                            for i in range(vcpus)],
            "nic_details": [],
            "disk_details": [{"read_bytes": _size(p), "read_requests": 0, "write_bytes": 0,
                              "write_requests": 0, "errors_count": 0} for p in disks],
        }


def _digest(secret: str | None) -> str | None:
    """Kept as a digest only: the fake guest can check a password, never show it."""
    return hashlib.sha256(secret.encode()).hexdigest() if secret else None


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0
