"""Shelving's states and the names it records, shared by the API, the host and the conductor.

A shelved server keeps its host (stopped, disk in place) until it is offloaded;
an offloaded one has no host at all, only its snapshot in the global image store
(``shelved_image_id`` in its system metadata), its ports and its volumes, so it
can be unshelved in any cell.
"""

from __future__ import annotations

from transcell.compute import vm_states as vm

SHELVED = "shelved"
SHELVED_OFFLOADED = "shelved_offloaded"
PAUSED = "paused"
SUSPENDED = "suspended"

# task states, Nova's names
SHELVING = "shelving"
SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
SHELVING_OFFLOADING = "shelving_offloading"
UNSHELVING = "unshelving"

#: A server in one of these may be shelved (Nova's list).
SHELVABLE = (vm.ACTIVE, vm.STOPPED, PAUSED, SUSPENDED)
#: Task states a compute host finishes after a restart.
HOST_TASKS = (SHELVING, SHELVING_IMAGE_UPLOADING, SHELVING_OFFLOADING)

# system metadata keys, Nova's names
IMAGE_KEY = "shelved_image_id"
AT_KEY = "shelved_at"
HOST_KEY = "shelved_host"

# instance actions and their events
SHELVE = "shelve"
SHELVE_OFFLOAD = "shelveOffload"
UNSHELVE = "unshelve"
SHELVE_EVENT = "compute_shelve_instance"
OFFLOAD_EVENT = "compute_shelve_offload_instance"
UNSHELVE_EVENT = "compute_unshelve_instance"
CONDUCTOR_EVENT = "conductor_unshelve_instance"

#: The saga kind of an unshelve of an offloaded server.
SAGA_KIND = "unshelve"


def image_name(server: dict) -> str:
    """The snapshot's name, as Nova (and Tempest, which looks it up by it) spells it."""
    return f"{server['display_name']}-shelved"
