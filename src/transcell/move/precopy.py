"""The saga's pre-copy step: copy a running guest's disk in rounds before it stops.

Round 1 sends everything the guest changed since its image; each later round
sends only the chunks it wrote to during the previous one, and the target
patches the disk it is building. Rounds go on while what is left to send (the
chunks written to since the last freeze) shrinks and is larger than
``[conductor] precopy_stop_mib``, at most
``[conductor] precopy_max_rounds`` times. Then ``prep_source`` stops the
guest and sends the last chunks, and the downtime is that last, small round
plus the target's patch, check and start.

Everything here runs while the guest runs where it was, and nothing in the
database or the guest changes; so a failure or a kill at any point of it is
undone by deleting the round images, the target's unfinished disk and the
source's frozen layers, and the server never noticed.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from transcell import exception
from transcell.compute.rpcapi import ComputeAPI
from transcell.conf import CONF
from transcell.context import RequestContext
from transcell.faults import check_fault
from transcell.move import records
from transcell.move.saga import Saga
from transcell.registry import services

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024


def round_snapshot_id(migration_uuid: str, number: int) -> str:
    """The image of a pre-copy round, derived from the move so an undo can find every one."""
    return str(uuidlib.uuid5(records.SNAPSHOT_NAMESPACE, f"{migration_uuid}/precopy-{number}"))


def wanted(saga: Saga) -> bool:
    """Pre-copy only pays for a guest that runs: a stopped one loses nothing by waiting."""
    res = saga.resources
    return (CONF.conductor.precopy_max_rounds > 0 and bool(res.get("power_on"))
            and not res.get("volume_backed"))


def stop_bytes() -> int:
    """What may be left for after the stop: rounds end at or under it, and a guest
    that wrote no more since its image gets none (``[conductor] precopy_stop_mib``)."""
    return CONF.conductor.precopy_stop_mib * MIB


def skipped(compute: ComputeAPI, saga: Saga, ctx: RequestContext) -> bool:
    """Whether the guest wrote so little since its image that no round is worth it.

    One call to the source host, which measures its disk's own chunks without
    freezing it (``precopy_measure``). At most ``precopy_stop_mib`` there means
    a first round would send what the stop may send anyway, and every round
    costs a freeze, an image and a build at the target; the move goes straight
    to the stop. The reason is kept with the move's resources, written by the
    step's own commit: a crash before it skipped nothing that needs undoing.
    A host that cannot tell (a raw disk, an older host) gets the rounds.
    """
    try:
        measured = compute.precopy_measure(ctx, saga.resources["source_host"],
                                           saga.instance_uuid, CONF.image.chunk_size)
    except exception.RPCVersionUnsupported:
        return False
    pending = measured.get("pending_bytes")
    if pending is None or pending > stop_bytes():
        return False
    saga.note(precopy_skipped={
        "reason": f"{pending} bytes of chunks written since the image, at most "
                  f"[conductor] precopy_stop_mib ({CONF.conductor.precopy_stop_mib} MiB)",
        "pending_bytes": pending, "stop_bytes": stop_bytes()})
    LOG.info("Not pre-copying %s: %d bytes of chunks to send, all after the stop",
             saga.instance_uuid, pending)
    return True


def run(compute: ComputeAPI, saga: Saga, ctx: RequestContext, guest: dict[str, Any],
        create_image: Callable[[str], None]) -> None:
    """Copy rounds until the rest is small or stops shrinking; remember the last image.

    ``create_image(image_id)`` makes an empty image the source host uploads into.
    """
    if not wanted(saga):
        return
    res = saga.resources
    uuid = saga.instance_uuid
    rounds: list[dict[str, Any]] = []
    previous = None
    pending = None
    saga.remember(precopy_started=True)  # before any freeze: the undo knows to look
    for number in range(1, CONF.conductor.precopy_max_rounds + 1):
        image_id = round_snapshot_id(saga.uuid, number)
        create_image(image_id)
        started = time.monotonic()
        sent = compute.precopy_round(ctx, res["source_host"], uuid, image_id, previous)
        saga.fence()
        if not sent.get("supported"):
            _delete(image_id)
            LOG.info("Host %s cannot pre-copy %s; it is copied once stopped",
                     res["source_host"], uuid)
            return
        built = compute.prebuild_at_dest(ctx, res["dest_host"], guest, image_id)
        saga.fence()
        # the chunks the guest wrote to since this round's freeze, while it was sent and built
        written = compute.precopy_pending(ctx, res["source_host"], uuid,
                                          int(sent.get("chunk_size") or 0))
        rounds.append({"round": number, "bytes_sent": sent["bytes_uploaded"],
                       "changed_bytes": sent.get("changed_bytes"),
                       "bytes_written_at_target": built.get("bytes_downloaded"),
                       # the store's spool the target took over: on disk there already
                       "bytes_taken_at_target": built.get("bytes_taken") or 0,
                       "pending_bytes": written,
                       "upload_seconds": sent.get("seconds"),
                       "build_seconds": built.get("seconds"),
                       "seconds": round(time.monotonic() - started, 3)})
        saga.remember(precopy_rounds=rounds, precopy_image=image_id)
        check_fault("precopy-round", uuid)
        if previous is not None:
            _delete(previous)
        previous = image_id
        shrinking = pending is None or written < pending
        pending = written
        if pending <= stop_bytes() or not shrinking:
            break
    LOG.info("Pre-copied %s in %d rounds, %d bytes left for after the stop", uuid,
             len(rounds), pending or 0)


def abandon(compute: ComputeAPI, saga: Saga, ctx: RequestContext) -> None:
    """Undo a pre-copy wherever it stopped: the guest has run at the source throughout."""
    res = saga.resources
    if not res.get("precopy_started"):
        return  # a stopped or volume-backed server: nothing was frozen or sent
    if res.get("dest_host"):
        compute.cleanup_move_at_dest(ctx, res["dest_host"], saga.instance_uuid)
    compute.end_precopy(ctx, res["source_host"], saga.instance_uuid)
    forget_images(saga)


def forget_images(saga: Saga) -> None:
    """Delete every round's image (a move that got as far as any round made at most
    ``precopy_max_rounds`` of them; those of a smaller limit set since are absent)."""
    for number in range(1, max(CONF.conductor.precopy_max_rounds,
                               len(saga.resources.get("precopy_rounds") or [])) + 1):
        _delete(round_snapshot_id(saga.uuid, number))


def bytes_sent(resources: dict[str, Any]) -> int | None:
    """What a move sent to the store for the root disk: its pre-copy rounds while the
    guest ran and the last chunks after the stop; None before anything was sent."""
    rounds = resources.get("precopy_rounds") or []
    after = resources.get("bytes_uploaded")
    if after is None and not rounds:
        return None
    return sum(r.get("bytes_sent") or 0 for r in rounds) + (after or 0)


def _delete(image_id: str) -> None:
    try:
        services.image.delete(RequestContext.admin(), image_id)
    except exception.ImageNotFound:
        pass
