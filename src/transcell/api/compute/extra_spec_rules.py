"""What a flavor extra spec may say, checked from microversion 2.86 on.

A key in a namespace the compute service knows (``hw:``, ``trait:``, ...)
must be one of that namespace's keys and its value must be of the key's kind:
a typo such as ``hw:cpu_polcy`` or ``hw:cpu_policy=dedicatd`` would otherwise
be stored and silently ignored by the scheduler and the hosts. A key in any
other namespace, or without one, belongs to somebody else (a filter of the
operator's, another service) and is stored unchecked, as Nova stores it.

The rules are data: a table of key patterns and value kinds. The namespaces
covered are the ones this cloud acts on (``trait`` and ``resources``, read by
the scheduler) and the ones clients commonly send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transcell import exception

#: Which spellings of a boolean are accepted, as the hosts read them.
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
_FALSE = frozenset({"0", "f", "false", "off", "n", "no"})
#: A request group suffix: ``trait1:``, ``resources_gpu:``.
_GROUP = r"[a-zA-Z0-9_-]{0,64}"
#: A host CPU set as written in specs: ``0-3,^2,8``.
_CPU_SET = r"\^?\d+(-\d+)?(,\s*\^?\d+(-\d+)?)*"


@dataclass(frozen=True)
class Kind:
    """How a value is checked: one of ``choices``, an integer in a range, a boolean,
    or text (optionally matching ``pattern``)."""

    name: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    pattern: str | None = None

    def check(self, key: str, value: str) -> None:
        reason = self._problem(value)
        if reason:
            raise exception.Invalid(f"Validation failed; extra spec {key!r} has the value "
                                    f"{value!r}, which {reason}.")

    def _problem(self, value: str) -> str | None:
        if self.name == "enum" and value not in self.choices:
            return "is not one of " + ", ".join(repr(c) for c in self.choices)
        if self.name == "int":
            try:
                number = int(value.strip())
            except ValueError:
                return "is not an integer"
            if self.minimum is not None and number < self.minimum:
                return f"is less than {self.minimum}"
        if self.name == "bool" and value.strip().lower() not in _TRUE | _FALSE:
            return "is not a boolean (true or false)"
        if self.name == "text" and self.pattern and not re.fullmatch(self.pattern, value):
            return "is not in the expected form"
        return None


def _enum(*choices: str) -> Kind:
    return Kind("enum", choices=choices)


def _int(minimum: int = 0) -> Kind:
    return Kind("int", minimum=minimum)


BOOL = Kind("bool")
TEXT = Kind("text")
CPU_SET = Kind("text", pattern=_CPU_SET)
PAGE_SIZE = Kind("text", pattern=r"small|large|any|\d+([kKMGT]i?)?([bB]|bit)?")
PCI_ALIAS = Kind("text", pattern=r"[^:,]+:\d+(,\s*[^:,]+:\d+)*")

#: namespace pattern -> (key pattern after the colon -> kind); ``None`` for the
#: namespace of keys without a colon. Literal names are matched whole.
_RULES: dict[str, dict[str, Kind]] = {
    "hw": {
        "cpu_policy": _enum("dedicated", "shared", "mixed"),
        "cpu_thread_policy": _enum("require", "isolate", "prefer"),
        "emulator_threads_policy": _enum("share", "isolate"),
        "cpu_realtime": BOOL,
        "cpu_realtime_mask": CPU_SET,
        "cpu_dedicated_mask": CPU_SET,
        "hide_hypervisor_id": BOOL,
        "numa_nodes": _int(1),
        r"numa_cpus\.\d+": CPU_SET,
        r"numa_mem\.\d+": _int(0),
        "mem_page_size": PAGE_SIZE,
        "cpu_sockets": _int(1), "cpu_cores": _int(1), "cpu_threads": _int(1),
        "cpu_max_sockets": _int(1), "cpu_max_cores": _int(1), "cpu_max_threads": _int(1),
        "boot_menu": BOOL,
        "watchdog_action": _enum("none", "pause", "poweroff", "reset", "disabled"),
        "serial_port_count": _int(0),
        "pmu": BOOL,
        "pmem": TEXT,
        "mem_encryption": BOOL,
        "tpm_version": _enum("1.2", "2.0"),
        "tpm_model": _enum("tpm-tis", "tpm-crb"),
        "tpm_secret_security": _enum("user", "host", "deployment"),
        "vif_multiqueue_enabled": BOOL,
        "locked_memory": BOOL,
        "virtio_packed_ring": BOOL,
        "pci_numa_affinity_policy": _enum("required", "legacy", "preferred", "socket"),
        "maxphysaddr_mode": _enum("emulate", "passthrough"),
        "maxphysaddr_bits": _int(1),
        "viommu_model": _enum("intel", "smmuv3", "virtio", "auto"),
        "ephemeral_encryption": BOOL,
        "ephemeral_encryption_format": _enum("luks"),
    },
    "hw_rng": {"allowed": BOOL, "rate_bytes": _int(0), "rate_period": _int(0)},
    "hw_video": {"ram_max_mb": _int(0)},
    "os": {"secure_boot": _enum("required", "disabled", "optional")},
    "quota": {
        "(cpu|memory|disk_io|vif)_shares_level": _enum("custom", "high", "normal", "low"),
        "cpu_shares": _int(0), "cpu_period": _int(0), "cpu_quota": _int(-1),
        "cpu_limit": _int(0), "cpu_reservation": _int(0), "cpu_shares_share": _int(0),
        "memory_limit": _int(0), "memory_reservation": _int(0),
        "memory_shares_share": _int(0),
        "disk_io_limit": _int(0), "disk_io_reservation": _int(0),
        "disk_io_shares_share": _int(0),
        "vif_limit": _int(0), "vif_reservation": _int(0), "vif_shares_share": _int(0),
        "disk_(read|write|total)_(bytes|iops)_sec": _int(0),
        "vif_(inbound|outbound)_(average|peak|burst)": _int(0),
    },
    f"trait{_GROUP}": {"[a-zA-Z0-9_]+": _enum("required", "forbidden")},
    f"resources{_GROUP}": {"[A-Z0-9_]+": _int(0)},
    "aggregate_instance_extra_specs": {".+": TEXT},
    "capabilities": {
        "(cpu_info|cpu_info:.+|hypervisor_type|hypervisor_version|hypervisor_hostname"
        "|host|nodename|host_ip|free_ram_mb|free_disk_mb|total_usable_ram_mb"
        "|total_usable_disk_gb|disk_mb_used|vcpus_total|vcpus_used|num_instances"
        "|num_io_ops|supported_hv_specs|stats:.+|cpu_allocation_ratio"
        "|ram_allocation_ratio|disk_allocation_ratio)": TEXT,
    },
    "pci_passthrough": {"alias": PCI_ALIAS},
    "accel": {"device_profile": TEXT},
}

#: Keys without a namespace that the scheduler knows; any other is someone else's.
_PLAIN: dict[str, Kind] = {"group_policy": _enum("none", "isolate")}


def validate(key: str, value: str) -> None:
    """400 (``exception.Invalid``) for a key of a known namespace that is not one of
    its keys, or a known key whose value is not of its kind; anything else passes."""
    if ":" not in key:
        if key in _PLAIN:
            _PLAIN[key].check(key, value)
        return
    namespace, name = key.split(":", 1)
    for space, rules in _RULES.items():
        if not re.fullmatch(space, namespace):
            continue
        for pattern, kind in rules.items():
            if re.fullmatch(pattern, name):
                kind.check(key, value)
                return
        raise exception.Invalid(f"Validation failed; extra spec {key!r} is not a key of "
                                f"the {namespace!r} namespace.")


def validate_all(specs: dict[str, str]) -> None:
    for key in sorted(specs):
        validate(key, specs[key])
