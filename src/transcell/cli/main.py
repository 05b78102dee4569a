"""``transcell``: run the embedded cloud and inspect any transcell cloud.

argparse parses the command line; oslo.config reads the configuration file
(``--config-file``, or ``STATE_DIR/transcell.conf`` when it exists), so the
same options work for the embedded cloud and a distributed deployment.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from transcell.cli import drain, moves, seed
from transcell.conf import CONF


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=argparse.SUPPRESS,
                        help="State directory of the cloud (default: ./state)")
    parser.add_argument("--config-file", default=argparse.SUPPRESS,
                        help="transcell configuration file")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transcell", description=__doc__.splitlines()[0])
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="Run the embedded cloud on 127.0.0.1 until stopped")
    _common(up)
    up.add_argument("--cells", type=int)
    up.add_argument("--hosts-per-cell", type=int)
    up.add_argument("--port", type=int)
    up.add_argument("--distributed", action="store_true",
                    help="Every service its own process on PostgreSQL, MariaDB, RabbitMQ "
                         "and Keystone")
    up.add_argument("--netns", action="store_true",
                    help="With --distributed: each cell's compute hosts in a network "
                         "namespace of that cell")

    for name, text in (("api", "Serve the compute, image and network APIs"),
                       ("scheduler", "Run the scheduler service"),
                       ("conductor", "Run the super-conductor, or with --cell a cell's "
                                     "conductor"),
                       ("compute", "Run one compute host")):
        service = sub.add_parser(name, help=text)
        _common(service)
        if name == "conductor":
            service.add_argument("--cell", help="Run the conductor of this cell")
        if name == "compute":
            service.add_argument("--host", required=True, help="Name of this host")
        if name in ("api", "scheduler", "conductor"):
            service.add_argument("--host", help="Name this service reports in os-services")

    demo = sub.add_parser("demo", help="Run the main job on the embedded default")
    _common(demo)
    demo.add_argument("--port", type=int, default=0)

    db = sub.add_parser("db", help="Database maintenance")
    _common(db)
    db_sub = db.add_subparsers(dest="db_command", required=True)
    _common(db_sub.add_parser("sync", help="Create or upgrade every database's schema"))

    _common(sub.add_parser("placement", help="Serve Placement as its own process on "
                                             "[placement] bind_host:bind_port"))

    cell = sub.add_parser("cell", help="Cells")
    _common(cell)
    cell_sub = cell.add_subparsers(dest="cell_command", required=True)
    cell_list = cell_sub.add_parser("list", help="List cells")
    _common(cell_list)
    cell_list.add_argument("--json", action="store_true")

    instance = sub.add_parser("instance", help="Servers, as the databases hold them")
    _common(instance)
    inst_sub = instance.add_subparsers(dest="instance_command", required=True)
    locate = inst_sub.add_parser("locate", help="Where a server lives: mapping, rows, disks")
    _common(locate)
    locate.add_argument("uuid")
    locate.add_argument("--json", action="store_true")

    migration = sub.add_parser("migration", help="Server moves (resize, cold migration)")
    _common(migration)
    mig_sub = migration.add_subparsers(dest="migration_command", required=True)
    mig_show = mig_sub.add_parser("show", help="One move: steps, bytes moved, durations")
    _common(mig_show)
    mig_show.add_argument("uuid")
    mig_show.add_argument("--json", action="store_true")

    moves.add_parser(sub, _common)
    drain.add_parser(sub, _common)

    seed.add_parser(sub, _common)

    audit = sub.add_parser("audit", help="Check mappings, rows, moves, allocations, ports, "
                                          "images, disks and quotas")
    _common(audit)
    audit.add_argument("--json", action="store_true")
    audit.add_argument("--fix", action="store_true",
                       help="Repair what is provably safe to repair, say what was done, "
                            "then report what is left")
    return parser


def load_config(args: argparse.Namespace) -> None:
    state_dir = os.path.abspath(getattr(args, "state_dir", None) or "state")
    config_file = getattr(args, "config_file", None)
    files = []
    if config_file:
        files.append(config_file)
    elif os.path.exists(os.path.join(state_dir, "transcell.conf")):
        files.append(os.path.join(state_dir, "transcell.conf"))
    CONF([], project="transcell", default_config_files=files)
    if getattr(args, "state_dir", None) or not config_file:
        CONF.set_override("state_dir", state_dir)
    level = logging.DEBUG if getattr(args, "debug", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_up(args: argparse.Namespace) -> int:
    from transcell.cloud import EmbeddedCloud
    if args.cells:
        CONF.set_override("cells", args.cells, group="embedded")
    if args.hosts_per_cell:
        CONF.set_override("hosts_per_cell", args.hosts_per_cell, group="embedded")
    port = args.port if args.port is not None else CONF.bind_port
    if args.distributed or args.netns:
        from transcell.deploy.launcher import run_distributed
        return run_distributed(CONF.state_dir, port, netns=args.netns)
    from transcell.wsgi.server import raise_fd_limit
    # every client connection is a descriptor; the usual soft limit of 1024 is far too few
    raise_fd_limit()
    from transcell.lifecycle import StopSignals, serve_until_stopped
    signals = StopSignals()
    cloud = EmbeddedCloud(CONF.state_dir, port=port, host=CONF.bind_host)
    cloud.setup()
    cloud.serve()
    return serve_until_stopped(f"transcell: {cloud.base_url} (state {cloud.state_dir})",
                               cloud.stop, signals)


def cmd_api(args: argparse.Namespace) -> int:
    from transcell.service.api import run_api
    _service_host(args)
    return run_api(_config_files(args))


def cmd_scheduler(args: argparse.Namespace) -> int:
    from transcell.service.control import run_scheduler
    _service_host(args)
    return run_scheduler()


def cmd_conductor(args: argparse.Namespace) -> int:
    from transcell.service import control
    _service_host(args)
    if args.cell:
        return control.run_cell_conductor(args.cell)
    return control.run_conductor()


def cmd_compute(args: argparse.Namespace) -> int:
    from transcell.service.compute import run_compute
    return run_compute(args.host)


def _service_host(args: argparse.Namespace) -> None:
    if getattr(args, "host", None):
        CONF.set_override("host", args.host)


def _config_files(args: argparse.Namespace) -> list[str]:
    if getattr(args, "config_file", None):
        return [args.config_file]
    return [os.path.join(CONF.state_dir, "transcell.conf")]


def cmd_demo(args: argparse.Namespace) -> int:
    from transcell.demo import run
    return run(CONF.state_dir, args.port)


def cmd_db_sync(args: argparse.Namespace) -> int:
    from transcell import bootstrap
    bootstrap.sync_databases()
    print("databases are at their newest schema")
    return 0


def cmd_placement(args: argparse.Namespace) -> int:
    from transcell.placement.service import serve
    return serve()


def cmd_cell_list(args: argparse.Namespace) -> int:
    from transcell import cell
    rows = [{"uuid": c.uuid, "name": c.name, "database": _redact(c.database_connection),
             "transport": _redact(c.transport_url), "disabled": c.disabled}
            for c in cell.list_cells()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']:8} {row['uuid']}  {row['transport']:16} {row['database']}")
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def cmd_locate(args: argparse.Namespace) -> int:
    from transcell.inspect import locate
    report = locate(args.uuid)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        mapping = report["mapping"]
        print(f"mapping: {mapping['cell'] if mapping else 'none'}")
        for row in report["rows"]:
            print(f"  {row['cell']}: host={row['host']} vm_state={row['vm_state']} "
                  f"task_state={row['task_state']} hidden={row['hidden']} "
                  f"deleted={row['deleted']}")
        for disk in report["disks"]:
            print(f"  disk on {disk['host']}: {disk['path']}")
    return 0 if report["mapping"] or report["rows"] else 1


def cmd_migration_show(args: argparse.Namespace) -> int:
    from transcell import exception
    from transcell.move import report
    try:
        found = report.show(args.uuid)
    except exception.NotFound as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2) if args.json else report.render(found))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from transcell.audit import run_audit, run_fix
    report: dict = run_fix() if args.fix else {"problems": run_audit()}
    problems = report["problems"]
    if args.json:
        print(json.dumps({"ok": not problems, **report}, indent=2))
        return 1 if problems else 0
    for done in report.get("fixed", []):
        print(f"fixed {done['kind']}: {done['action']}")
    for left in report.get("skipped", []):
        print(f"left alone {left['kind']} of {left['subject']}: {left['reason']}")
    if problems:
        for problem in problems:
            print(f"{problem['kind']}: {problem['detail']}")
    else:
        print("consistent: no problems found")
    return 1 if problems else 0


COMMANDS = {
    "up": cmd_up,
    "api": cmd_api,
    "scheduler": cmd_scheduler,
    "conductor": cmd_conductor,
    "compute": cmd_compute,
    "demo": cmd_demo,
    ("db", "sync"): cmd_db_sync,
    "placement": cmd_placement,
    ("cell", "list"): cmd_cell_list,
    ("instance", "locate"): cmd_locate,
    ("migration", "show"): cmd_migration_show,
    "audit": cmd_audit,
    ("dev", "seed"): seed.cmd_seed,
    ("move", "plan"): moves.cmd_plan,
    "drain": drain.cmd_drain,
}


def main(argv: list[str] | None = None) -> int:
    # State files are created private by transcell.statefiles whatever the umask;
    # this also covers files that libraries and subprocesses create there.
    os.umask(0o077)
    args = build_parser().parse_args(argv)
    load_config(args)
    key = args.command
    sub = getattr(args, f"{args.command}_command", None)
    handler = COMMANDS[(key, sub) if sub else key]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
