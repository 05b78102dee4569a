"""Moves: those an operator must look at, servers with two at once, and the temporary
snapshots a move should have deleted when it ended."""

from __future__ import annotations

from typing import Any

from transcell.audit import Problem, fix
from transcell.audit.state import ENDED, Snapshot, describe
from transcell.context import RequestContext
from transcell.move import records
from transcell.move import saga as sagas


def check(snap: Snapshot, images: Any) -> list[Problem]:
    problems = []
    for uuid, history in snap.sagas.items():
        for saga in history:
            if saga.status == sagas.FAILED:
                problems.append(Problem("failed-move",
                                        f"move {saga.uuid} of {uuid} could not be undone: "
                                        f"{saga.error}", uuid))
        flying = [s for s in history if s.status in sagas.IN_FLIGHT]
        if len(flying) > 1:
            problems.append(Problem("duplicate-move",
                                    f"{uuid} has {len(flying)} moves in flight: "
                                    f"{', '.join(describe(s) for s in flying)}", uuid))
    return problems + _images(snap, images)


def _images(snap: Snapshot, images: Any) -> list[Problem]:
    problems = []
    ctx = RequestContext.admin()
    # a move's temporary snapshot is hidden from image lists, so ask for those too
    listed = {i["id"]: i for i in [*images.list(ctx, {}), *images.list(ctx, {"os_hidden": True})]}
    for image in listed.values():
        if not image.get("owner") and image.get("visibility") != "public":
            problems.append(Problem("image-without-owner", f"image {image['id']} has no owner",
                                    image["id"]))
    temporary = {image_id: image.get("transcell_migration")
                 for image_id, image in listed.items() if image.get("transcell_migration")}
    # a snapshot of an ended move is found by its derived id even if it lost its tag
    for saga in snap.saga_by_uuid.values():
        if saga.status in ENDED and records.snapshot_id_for(saga.uuid) in listed:
            temporary.setdefault(records.snapshot_id_for(saga.uuid), saga.uuid)
    for image_id, move in temporary.items():
        saga = snap.saga_by_uuid.get(move)
        if saga is not None and saga.status in ENDED:
            problems.append(Problem("orphan-snapshot",
                                    f"temporary image {image_id} of {describe(saga)} of "
                                    f"{saga.instance_uuid} outlived it", image_id,
                                    repair=fix.delete_snapshot(images, image_id, move),
                                    repair_key=("image", image_id)))
        elif saga is None and move not in snap.legacy_moves:
            problems.append(Problem("orphan-snapshot",
                                    f"temporary image {image_id} belongs to move {move}, "
                                    "which is not running", image_id))
    report = images.store.check()
    for digest in report["missing"]:
        problems.append(Problem("missing-chunk",
                                f"chunk {digest} is named by an image but not in the store",
                                digest))
    for name in report.get("orphan_spools", ()):
        problems.append(Problem("orphan-spool",
                                f"spool file {name} of the image store holds no image's "
                                "chunks (a move's upload or take-over was cut short)",
                                name, repair=fix.delete_orphan_spool(images, name),
                                repair_key=("spool", name)))
    return problems
