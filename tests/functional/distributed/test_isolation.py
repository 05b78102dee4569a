"""Cells that are really apart: while a server crosses from cell1 to cell2, nothing of
cell2 answers from inside cell1's network namespace, and cell1's hosts hold no
credential of cell2 or of the API tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import movehelpers as mh
import pytest

from transcell.deploy import layout as lay
from transcell.deploy import netns

pytestmark = pytest.mark.distributed

#: Run inside a namespace: try each (host, port) and print what happened.
PROBE = textwrap.dedent("""
    import json, socket, sys
    out = {}
    for host, port in json.loads(sys.argv[1]):
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect((host, port))
            out[f"{host}:{port}"] = "open"
        except OSError as exc:
            out[f"{host}:{port}"] = type(exc).__name__ + ":" + str(exc.errno)
        finally:
            sock.close()
    print(json.dumps(out))
""")

#: Run inside a namespace: log in to a vhost with a transport URL; print ok or the error.
AMQP_LOGIN = textwrap.dedent("""
    import sys, kombu
    # oslo.messaging's rabbit:// is kombu's amqp://
    conn = kombu.Connection("amqp://" + sys.argv[1].split("://", 1)[1], connect_timeout=5)
    try:
        conn.connect()
        print("ok")
    except Exception as exc:
        print(type(exc).__name__ + ": " + str(exc)[:200])
    finally:
        conn.release()
""")


def _layout(cloud) -> lay.Layout:
    with open(os.path.join(cloud.state_dir, lay.LAYOUT_NAME)) as fh:
        return lay.Layout(**json.load(fh))


def _space(layout: lay.Layout, cell: str) -> netns.CellNamespace:
    return netns.CellNamespace(layout.prefix, cell, layout.cell_names.index(cell) + 1)


def _in_ns(space: netns.CellNamespace, code: str, *args: str) -> str:
    proc = space.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                     timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _probe(space: netns.CellNamespace, targets: list[tuple[str, int]]) -> dict[str, str]:
    return json.loads(_in_ns(space, PROBE, json.dumps(targets)))


def test_cell1_reaches_nothing_of_cell2_while_a_server_crosses(ncloud):
    layout = _layout(ncloud)
    one, two = _space(layout, "cell1"), _space(layout, "cell2")
    db1 = lay.DB_PORTS[layout.engine("cell1")]
    db2 = lay.DB_PORTS[layout.engine("cell2")]
    assert db1 != db2, "the test needs the two cells on different database servers"

    server = mh.boot(ncloud, "crosser", flavor="11")
    mh.action(ncloud, server["id"], {"resize": {"flavorRef": "21"}})

    # what cell1's hosts may reach answers: their own database server and the broker
    reach = _probe(one, [(one.host_address, db1), (one.host_address, lay.RABBIT_PORT)])
    assert set(reach.values()) == {"open"}, reach
    # cell2's database server: not through cell1's relay, not on cell1's loopback,
    # and cell2's own addresses have no route at all
    probes = _probe(one, [(one.host_address, db2), ("127.0.0.1", db2),
                          ("127.0.0.1", lay.RABBIT_PORT), (two.ns_address, db2),
                          (two.host_address, db2), (two.ns_address, lay.RABBIT_PORT),
                          (two.host_address, lay.RABBIT_PORT)])
    assert "open" not in probes.values(), probes
    for key in (f"{two.ns_address}:{db2}", f"{two.host_address}:{lay.RABBIT_PORT}"):
        assert probes[key].startswith("OSError:101") or "Unreachable" in probes[key] \
            or probes[key].startswith("TimeoutError"), probes

    # the broker answers cell1's credentials on cell1's vhost only
    with open(os.path.join(ncloud.state_dir, "etc", "cell1.conf")) as fh:
        cell1_conf = fh.read()
    own_url = next(line.split("=", 1)[1].strip() for line in cell1_conf.splitlines()
                   if line.startswith("transport_url") and "rabbit://" in line)
    assert _in_ns(one, AMQP_LOGIN, own_url) == "ok"
    foreign = own_url.rsplit("/", 1)[0] + "/" + layout.vhost("cell2")
    refused = _in_ns(one, AMQP_LOGIN, foreign)
    assert refused != "ok" and ("ACCESS_REFUSED" in refused or "NotAllowed" in refused
                                or "not allowed" in refused.lower()), refused

    # no secret of cell2 or of the API tier anywhere in cell1's configuration
    for role in ("cell2", "api", "cell0", "network", "placement"):
        assert layout.passwords[f"db:{role}"] not in cell1_conf, role
    for bus in ("cell2", "api"):
        assert layout.passwords[f"rabbit:{bus}"] not in cell1_conf, bus
    assert layout.db_name("api") not in cell1_conf

    # and the server crossed all the same
    found = mh.wait_status(ncloud, server["id"], "VERIFY_RESIZE", timeout=300)
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"
    mh.action(ncloud, server["id"], {"confirmResize": None}, expect=204)
    found = mh.wait_status(ncloud, server["id"], "ACTIVE")
    assert mh.cell_of_host(mh.host_of(found)) == "cell2"
    mh.assert_audit_clean(ncloud)


def test_each_cell_host_runs_inside_its_cells_namespace(ncloud):
    layout = _layout(ncloud)
    for cell in layout.cell_names:
        space = _space(layout, cell)
        inside = set(space.pids())
        for host in layout.hosts(cell):
            with open(os.path.join(ncloud.state_dir, "run", f"compute-{host}.pid")) as fh:
                pid = int(fh.read())
            assert pid in inside, f"compute {host} (pid {pid}) is not in {space.name}"
        with open(os.path.join(ncloud.state_dir, "run", f"conductor-{cell}.pid")) as fh:
            assert int(fh.read()) in inside
    # the API tier is not inside any cell
    with open(os.path.join(ncloud.state_dir, "run", "api.pid")) as fh:
        api = int(fh.read())
    ident = subprocess.run(["ip", "netns", "identify", str(api)], capture_output=True,
                           text=True)
    assert ident.stdout.strip() == ""


def test_operator_commands_work_against_the_distributed_cloud(ncloud):
    cells = json.loads(ncloud.transcell("cell", "list", "--json").stdout)
    assert [c["name"] for c in cells] == ["cell0", "cell1", "cell2"]
    layout = _layout(ncloud)
    for cell in cells:
        # credentials never printed
        assert ":***@" in cell["database"] and ":***@" in cell["transport"], cell
        for key, secret in layout.passwords.items():
            assert secret not in json.dumps(cell), key
    services = ncloud.request("GET", "/compute/v2.1/os-services").json()["services"]
    binaries = {(s["binary"], s["host"]) for s in services}
    assert ("nova-conductor", "conductor-1") in binaries
    assert ("nova-conductor", "conductor-2") in binaries
    assert ("nova-scheduler", "scheduler") in binaries
    assert {h for b, h in binaries if b == "nova-compute"} == {"cell1-host1", "cell2-host1"}
    assert all(s["state"] == "up" for s in services), services
