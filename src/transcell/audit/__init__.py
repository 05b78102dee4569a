"""``transcell audit``: is every server where exactly one authority says it is, and
does nothing hold on to work or resources that nobody is doing or using?

Checks, across the API DB, every cell, Placement, the network service, the
image store and the hosts' disks (one module per domain):

- ``servers``: mappings against rows; hidden rows only while a move owns them;
  task states with no live work behind them; VERIFY_RESIZE with no move;
  mappings queued for delete long ago whose server still lives;
- ``moves``: moves whose compensation gave up, servers with two moves in
  flight, temporary snapshots of moves that ended;
- ``allocations``: every Placement consumer is a live server on its node's
  provider or the migration consumer of a move in flight;
- ``ports``: ports of servers that no longer have them, servers whose ports
  are gone;
- ``disks``: disk files no live server or move in flight owns;
- ``volumes``: attachments against the servers' volume mappings, copies of
  volumes no move needs any more, files on backends that are nobody's;
- ``ports`` also checks bindings: a settled server's ports are bound to its
  host alone;
- ``quota``: projects using more than their limits;
- ``server_groups``: memberships of servers that are gone, hard policies broken.

``--fix`` (``fix.apply``) repairs only what a check marked provably safe,
each repair re-checking or guarding on the state it found, and reports the
rest untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transcell import conf


@dataclass
class Problem:
    kind: str
    detail: str
    subject: str | None = None
    #: does the safe repair and says what it did, or returns None when the state it
    #: was offered changed meanwhile (someone else is acting: leave it to them)
    repair: Callable[[], str | None] | None = None
    #: problems sharing a key share one repair (one row, one consumer...)
    repair_key: Any = None

    def as_dict(self) -> dict[str, str]:
        found = {"kind": self.kind, "detail": self.detail}
        if self.subject is not None:
            found["subject"] = self.subject
        return found


def find_problems(placement: Any = None, network: Any = None, images: Any = None,
                  volumes: Any = None) -> list[Problem]:
    """Every inconsistency found, each with its repair when one is provably safe."""
    from transcell.audit import (
        allocations,
        disks,
        moves,
        ports,
        quota,
        server_groups,
        servers,
        state,
    )
    from transcell.audit import volumes as volume_checks
    placement, network, images, volumes = _services(placement, network, images, volumes)
    snap = state.load()
    problems = servers.check(snap)
    problems += moves.check(snap, images)
    problems += allocations.check(snap, placement)
    problems += ports.check(snap, network)
    problems += disks.check(snap)
    problems += volume_checks.check(snap, volumes)
    problems += quota.check(snap)
    problems += server_groups.check(snap)
    return problems


def run_audit(placement: Any = None, network: Any = None, images: Any = None,
              volumes: Any = None) -> list[dict[str, str]]:
    """Every inconsistency found, as {kind, detail, subject}; empty means consistent."""
    return [p.as_dict() for p in find_problems(placement, network, images, volumes)]


def run_fix(placement: Any = None, network: Any = None, images: Any = None,
            volumes: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Repair what is safe: what was fixed, the repairs left alone (and why), and the
    problems a fresh audit still sees afterwards."""
    from transcell.audit import fix
    services = _services(placement, network, images, volumes)
    fixed, skipped = fix.apply(find_problems(*services))
    return {"fixed": fixed, "skipped": skipped, "problems": run_audit(*services)}


def _services(placement, network, images, volumes=None):
    """The running cloud's services when given, else opened straight from the state dir.

    An operator's tool, like nova-manage: it reads Placement, the network
    database and the image store directly, so it works with the cloud stopped.
    """
    from transcell.registry import services
    if placement is None:
        placement = services.placement
    if placement is None:
        from transcell.placement import client, embedded
        placement = (client.from_config() if conf.CONF.placement.url else
                     client.PlacementClient(client.DirectTransport(
                         embedded.load_app(embedded.database_url()))))
    if network is None:
        from transcell.network.service import NetworkService
        network = NetworkService(conf.network_database_url())
    if images is None:
        from transcell.image.service import ImageService
        from transcell.image.store import ChunkStore
        images = ImageService(ChunkStore(conf.image_store_dir(), conf.CONF.image.chunk_size))
    if volumes is None:
        volumes = services.volume
    if volumes is None:
        from transcell.volume.service import VolumeService
        volumes = VolumeService(conf.volume_database_url())
    return placement, network, images, volumes
