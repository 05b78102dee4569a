"""GET /servers/detail?limit=1000 on a cloud of many cells, hosts and servers.

Seeds a state directory with ``transcell dev seed`` (10 cells, 1,000 hosts,
100,000 servers by default; ``--cells/--hosts/--servers`` for another size, or
``--state-dir`` to reuse one already seeded), then times the detailed list
through the compute API's WSGI application, in this process: the real routes,
policy, cell reads, merge and views, JSON included, without a socket or an
HTTP server in front (starting ``transcell up`` would start every one of the
1,000 fake hosts). Three requests, each in both modes, alternating so that
other load on the machine falls on both alike:

- an administrator's ``all_tenants=1`` at microversion 2.1;
- the same at 2.91 (host status, the 2.x fields);
- a project's own servers (one of ``--projects``), at 2.1;

with the cells read as the default configuration chooses (``[api]
list_parallel_cells`` unset: one after the other for SQLite cells, in parallel
for cells across a network), in parallel (``true``) and one after the other
(``false``). It prints p50 and p90 of each, the ratios against the goal (p50
at most 100 ms) and against the serial reads, and the median CPU time of a
request (every thread of the process), which other load on the machine does
not inflate the way it does the wall-clock figures.

    .venv/bin/python benchmarks/list_scale.py --cells 10 --hosts 1000 --servers 100000
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

GOAL_MS = 100.0
#: CPU milliseconds (every thread of this process) of each request, in order
CPU: list[float] = []


def _app(state_dir: str):
    from transcell.api.compute.app import make_app
    from transcell.conf import CONF
    from transcell.context import RequestContext

    CONF([], project="transcell", default_config_files=[])
    CONF.set_override("state_dir", state_dir)

    def authenticate(req):
        user, project, roles = req.headers["X-Auth-Token"].split(":")
        return RequestContext(user_id=user, project_id=project, roles=roles.split(","))

    return make_app(authenticate)


#: How the cells are read: as configured by default, in parallel, one after the other.
MODES = ("default", "parallel", "serial")


def _mode(conf, mode: str) -> None:
    if mode == "default":
        conf.clear_override("list_parallel_cells", group="api")
    else:
        conf.set_override("list_parallel_cells", mode == "parallel", group="api")


def _get(app, path: str, token: str, version: str) -> tuple[float, int]:
    import webob
    req = webob.Request.blank(path)
    req.headers["X-Auth-Token"] = token
    req.headers["OpenStack-API-Version"] = f"compute {version}"
    started, cpu = time.perf_counter(), time.process_time()
    resp = req.get_response(app)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if resp.status_int != 200:
        raise SystemExit(f"{path}: {resp.status} {resp.text[:300]}")
    CPU.append(cpu * 1000)
    return elapsed, len(resp.json["servers"])


def main() -> int:
    parser = harness.scale_parser(__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    args = parser.parse_args()

    print(harness.machine())
    own = args.state_dir is None
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="list-scale-")
    try:
        if own:
            took = harness.seed(state_dir, args.cells, args.hosts, args.servers, args.projects)
            print(f"seeded {args.cells} cells, {args.hosts} hosts, {args.servers} servers "
                  f"in {took:.1f} s")
        app = _app(state_dir)
        from transcell.conf import CONF

        admin = "admin:admin-project:admin,member,reader"
        member = "seed-user-0:seed-project-0:member,reader"
        cases = [("admin all_tenants, 2.1", "/v2.1/servers/detail?all_tenants=1&limit=1000",
                  admin, "2.1"),
                 ("admin all_tenants, 2.91", "/v2.1/servers/detail?all_tenants=1&limit=1000",
                  admin, "2.91"),
                 ("one project's, 2.1", "/v2.1/servers/detail?limit=1000", member, "2.1")]
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for name, path, token, version in cases:
            for mode in MODES:
                _mode(CONF, mode)
                for _ in range(3):  # warm caches and pools
                    _, count = _get(app, path, token, version)
            for _ in range(args.rounds):
                for mode in MODES:
                    _mode(CONF, mode)
                    elapsed, count = _get(app, path, token, version)
                    times.setdefault((name, mode), []).append(elapsed * 1000)
                    cpu.setdefault((name, mode), []).append(CPU[-1])
            print(f"{name}: {count} servers a page")
        print(f"\nGET /servers/detail?limit=1000, {args.cells} cells, {args.hosts} hosts, "
              f"{args.servers} servers, {args.rounds} requests each (ms)")
        print(f"{'case':28} {'mode':9} {'p50':>8} {'p90':>8}  {'p50/goal':>8} "
              f"{'× serial':>15} {'CPU p50':>8}")
        for name, *_ in cases:
            serial = statistics.median(times[(name, "serial")])
            for mode in MODES:
                values = times[(name, mode)]
                p50 = statistics.median(values)
                ratio = f"{p50 / serial:15.2f}" if mode != "serial" else f"{'':15}"
                print(f"{name:28} {mode:9} {p50:8.1f} "
                      f"{harness.percentile(values, 90):8.1f}  {p50 / GOAL_MS:7.2f}x "
                      f"{ratio} {statistics.median(cpu[(name, mode)]):8.1f}")
        print(harness.load_note())
    finally:
        harness.drop_state(state_dir, own, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
