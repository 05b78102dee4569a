"""``transcell migration show``: one move as the operator needs to see it.

Read from the saga (API DB) and the migration records (cells), so it works
with the cloud stopped, and shows what each phase cost: bytes moved against
the disk's size, per-step durations and the guest's downtime.
"""

from __future__ import annotations

from typing import Any

from transcell import cell as cells
from transcell import exception
from transcell.db.types import isotime
from transcell.move import precopy, records
from transcell.move.saga import Saga


def show(migration_uuid: str) -> dict[str, Any]:
    try:
        saga = Saga.load(migration_uuid)
    except exception.NotFound:
        raise exception.NotFound(f"Migration {migration_uuid} could not be found.") from None
    res = saga.resources
    copies = []
    for cell in cells.list_cells(include_cell0=False):
        row = records.get_migration(cell, migration_uuid)
        if row is not None:
            copies.append({"cell": cell.name, "status": row["status"],
                           "hidden": bool(row["hidden"])})
    downtime = downtime_seconds(res)
    disk_size = res.get("disk_size")
    uploaded = precopy.bytes_sent(res)
    return {
        "uuid": saga.uuid,
        "instance_uuid": saga.instance_uuid,
        "kind": saga.kind,
        "status": saga.status,
        "point_of_no_return_passed": saga.flipped,
        "source": {"cell": _name(res.get("source_cell")), "host": res.get("source_host")},
        "target": {"cell": _name(res.get("target_cell")), "host": res.get("dest_host")},
        "old_flavor": (res.get("old_flavor") or {}).get("name"),
        "new_flavor": (res.get("new_flavor") or {}).get("name"),
        "steps": saga.steps,
        "phases_seconds": res.get("phases") or {},
        "disk_size": disk_size,
        "bytes_uploaded": uploaded,  # while the guest ran (pre-copy) and after it stopped
        "bytes_uploaded_after_stop": res.get("bytes_uploaded"),
        "bytes_downloaded": _written_at_target(res),
        # the store's spool a target on its filesystem took over: never written twice
        "bytes_taken_at_target": _taken_at_target(res),
        # read at the source: only chunks the guest changed when the disk is a delta
        "bytes_read_at_source": res.get("bytes_read"),
        "delta": res.get("delta"),
        "moved_fraction": (round(uploaded / disk_size, 4) if disk_size and uploaded is not None
                           else None),
        "downtime_seconds": downtime,
        # rounds copied while the guest ran, then what was left once it stopped
        "precopy_rounds": res.get("precopy_rounds") or [],
        # why there was none: the guest had written next to nothing since its image
        "precopy_skipped": res.get("precopy_skipped"),
        "chunks_after_stop": res.get("final_chunks"),
        "checksum": res.get("checksum"),
        "volumes": [{key: v.get(key) for key in (
            "volume_id", "action", "from_backend", "to_backend", "bytes", "bytes_sent",
            "checksum")} for v in res.get("volumes") or []],
        "ports": [{key: p.get(key) for key in (
            "port_id", "action", "fixed_ips", "old_fixed_ips", "new_fixed_ips")}
            for p in res.get("port_plan") or []],
        "error": saga.error,
        "migration_records": copies,
        "created_at": isotime(saga.created_at),
        "updated_at": isotime(saga.updated_at),
    }


def _written_at_target(res: dict[str, Any]) -> int | None:
    """Bytes the target wrote: building from the pre-copy rounds, then the last patch."""
    rounds = res.get("precopy_rounds") or []
    final = res.get("bytes_downloaded")
    if final is None and not rounds:
        return None
    return sum(r.get("bytes_written_at_target") or 0 for r in rounds) + (final or 0)


def _taken_at_target(res: dict[str, Any]) -> int:
    rounds = res.get("precopy_rounds") or []
    return sum(r.get("bytes_taken_at_target") or 0 for r in rounds) + (
        res.get("bytes_taken") or 0)


def downtime_seconds(res: dict[str, Any], running_at: float | None = None) -> float | None:
    """Guest stopped at the source to running at the target, rounded once here so the
    migration record, the drain's report and the finish event's line never disagree in
    the last digit."""
    stopped, running = res.get("stopped_at"), running_at or res.get("running_at")
    if not stopped or not running:
        return None
    return round(running - stopped, 3)


def downtime_summary(res: dict[str, Any], finished: dict[str, Any]) -> str:
    """The line the target's finish event carries (``details``, read from 2.84): the
    Compute API has no field for a move's downtime, and an operator reading the
    server's actions should not need the saga to see what the move cost the guest."""
    rounds = res.get("precopy_rounds") or []
    before = sum(r.get("bytes_sent") or 0 for r in rounds)
    after = res.get("bytes_uploaded") or 0
    down_s = downtime_seconds(res, finished.get("running_at"))
    if down_s is not None and res.get("power_on", True):
        down = f"guest down {down_s:.2f} s"
    else:
        down = "guest not running during the move"  # stopped before it: nothing to lose
    sent = f"root disk: {_mib(after)} sent after the stop"
    if rounds:
        sent += f", {_mib(before)} while running ({len(rounds)} pre-copy round" \
                f"{'s' if len(rounds) != 1 else ''})"
    return f"{down}; {sent}"[:255]


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def _name(cell_uuid: str | None) -> str | None:
    if not cell_uuid:
        return None
    try:
        return cells.get_cell(cell_uuid).name
    except exception.NotFound:
        return cell_uuid


def render(report: dict[str, Any]) -> str:
    def size(n: int | None) -> str:
        return "-" if n is None else f"{n / 1048576:.1f} MiB"

    lines = [
        f"migration {report['uuid']} ({report['kind']}) of server {report['instance_uuid']}",
        f"  status:   {report['status']}"
        f"{' (past point of no return)' if report['point_of_no_return_passed'] else ''}",
        f"  from:     {report['source']['host']} ({report['source']['cell']}), "
        f"flavor {report['old_flavor']}",
        f"  to:       {report['target']['host']} ({report['target']['cell']}), "
        f"flavor {report['new_flavor']}",
        f"  disk:     {size(report['disk_size'])}, uploaded {size(report['bytes_uploaded'])}, "
        f"written at the target {size(report['bytes_downloaded'])}"
        + (f", taken over from the store {size(report['bytes_taken_at_target'])}"
           if report.get("bytes_taken_at_target") else ""),
        f"  downtime: {report['downtime_seconds']} s",
        *(f"  pre-copy: round {r['round']}: sent {size(r['bytes_sent'])} while running, "
          f"{size(r['pending_bytes'])} of chunks written meanwhile ({r['seconds']} s"
          + (f": upload {r['upload_seconds']} s, target {r['build_seconds']} s"
             if r.get("upload_seconds") is not None else "") + ")"
          for r in report.get("precopy_rounds") or []),
        *([f"  pre-copy: skipped, {report['precopy_skipped']['reason']}"]
          if report.get("precopy_skipped") else []),
        "  steps:    " + ", ".join(
            f"{s['name']}={s['state']}"
            + (f" ({report['phases_seconds'][s['name']]} s)"
               if s["name"] in report["phases_seconds"] else "")
            for s in report["steps"]),
    ]
    for volume in report.get("volumes") or []:
        moved = (f" {volume['from_backend']} -> {volume['to_backend']}, sent "
                 f"{size(volume.get('bytes_sent'))}" if volume["action"] == "migrate" else
                 f" stays on {volume['from_backend']}")
        lines.append(f"  volume:   {volume['volume_id']}{moved}")
    for port in report.get("ports") or []:
        if port["action"] == "readdress":
            old = ",".join(ip["ip_address"] for ip in port.get("old_fixed_ips") or [])
            new = ",".join(ip["ip_address"] for ip in port.get("new_fixed_ips") or [])
            lines.append(f"  port:     {port['port_id']} re-addressed {old} -> {new}")
        else:
            lines.append(f"  port:     {port['port_id']} keeps its addresses")
    if report["error"]:
        lines.append(f"  error:    {report['error']}")
    return "\n".join(lines)
