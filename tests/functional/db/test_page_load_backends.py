"""A page's servers loaded in full in a few queries, on every engine.

``server_list.load`` reads a server's row and extra in one join and its tags,
metadata and system metadata in one union, with the page's uuids bound as one
expanding parameter; each engine must answer exactly what ``instance.to_dict``
answers server by server, and leave out deleted and hidden servers.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib

from sqlalchemy import select

from transcell.compute import instance as inst
from transcell.compute import server_list
from transcell.db import cell_models as cm
from transcell.db import migration
from transcell.db.inlist import InList
from transcell.db.session import session_for
from transcell.deploy import databases

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
SMALL = {"cur": {"flavorid": "1", "name": "small", "extra_specs": {"a": "b"}},
         "old": None, "new": None}


def _server(s, n: int, **fields) -> str:
    uuid = str(uuidlib.uuid4())
    s.add(cm.Instance(uuid=uuid, user_id="u", project_id="p", display_name=f"s-{n}",
                      vm_state="active", created_at=T0 + dt.timedelta(seconds=n),
                      launched_at=T0, **fields))
    return uuid


def test_a_page_loads_as_each_server_alone_on_every_engine(cell_db):
    with session_for(cell_db) as s:
        plain = _server(s, 0)
        rich = _server(s, 1, host="h1", locked=True)
        twin = _server(s, 2)
        gone = _server(s, 3, deleted=1)
        hidden = _server(s, 4, hidden=True)
        s.flush()
        for uuid in (rich, twin):
            s.add(cm.InstanceExtra(instance_uuid=uuid, flavor=SMALL, keypairs=[],
                                   request_networks=[{"network_id": "net"}]))
        for tag in ("zeta", "alpha", "mid"):
            s.add(cm.Tag(resource_id=rich, tag=tag))
        for n, key in enumerate(("k2", "k1", "k3")):
            s.add(cm.InstanceMetadata(instance_uuid=rich, key=key, value=f"v{n}"))
        s.add(cm.InstanceMetadata(instance_uuid=rich, key="old", value="x", deleted=1))
        s.add(cm.InstanceSystemMetadata(instance_uuid=rich, key="locked_reason",
                                        value="why"))
        s.add(cm.InstanceSystemMetadata(instance_uuid=twin, key="k1", value="sys"))
        for n in range(2):
            s.add(cm.VirtualInterface(uuid=f"vif-{n}", address=f"fa:16:3e:00:00:0{n}",
                                      network_id="net", instance_uuid=rich,
                                      info={"fixed_ips": []}))
            s.add(cm.InstanceFault(instance_uuid=rich, code=500, message=f"boom {n}"))
        s.add(cm.BlockDeviceMapping(uuid=str(uuidlib.uuid4()), instance_uuid=rich,
                                    source_type="image",
                                    destination_type="local", device_name="/dev/vda",
                                    boot_index=0))
    every = [plain, rich, twin, gone, hidden]
    with session_for(cell_db) as s:
        loaded = server_list.load(s, every)
        assert set(loaded) == {plain, rich, twin}
        for uuid in (plain, rich, twin):
            row = s.scalar(select(cm.Instance).where(cm.Instance.uuid == uuid))
            assert loaded[uuid] == inst.to_dict(s, row)
    assert loaded[rich]["tags"] == ["alpha", "mid", "zeta"]
    assert list(loaded[rich]["metadata"].items()) == [("k2", "v0"), ("k1", "v1"), ("k3", "v2")]
    assert loaded[rich]["system_metadata"] == {"locked_reason": "why"}
    assert loaded[twin]["metadata"] == {} and loaded[twin]["system_metadata"] == {"k1": "sys"}
    assert loaded[rich]["fault"]["message"] == "boom 1"
    assert loaded[plain]["flavor"] is None and loaded[plain]["keypairs"] is None


def test_a_page_larger_than_one_in_list_is_loaded_whole(cell_db, monkeypatch):
    monkeypatch.setattr(server_list, "IN_CHUNK", 2)
    with session_for(cell_db) as s:
        uuids = [_server(s, n) for n in range(5)]
        s.flush()
        for uuid in uuids:
            s.add(cm.Tag(resource_id=uuid, tag=uuid[:8]))
    with session_for(cell_db) as s:
        loaded = server_list.load(s, uuids)
    assert {u: loaded[u]["tags"] for u in uuids} == {u: [u[:8]] for u in uuids}


def test_a_list_bound_at_execution_matches_exactly_its_values(cell_db):
    """On SQLite the list travels as JSON text (``json_each``), elsewhere as one
    parameter per value; either way quotes, backslashes and non-ASCII text match
    themselves only, and an empty list matches nothing."""
    names = ["plain", "it's", 'say "hi"', "back\\slash", "ünï", "%_", "[1]"]
    with session_for(cell_db) as s:
        owner = _server(s, 0)
        s.flush()
        for n, name in enumerate(names):
            s.add(cm.InstanceMetadata(instance_uuid=owner, key=name, value=str(n)))
    table = cm.InstanceMetadata.__table__
    among = InList(lambda among: select(table.c.key).where(among(table.c.key)))
    with session_for(cell_db) as s:
        for wanted in ([], names[:1], names[1:], ["%", "nothing", names[4]]):
            got = sorted(key for (key,) in among.execute(s, wanted))
            assert got == sorted(set(wanted) & set(names))
    assert "json_each" in str(among.statements[True])


def _subset(part: dict, whole: dict) -> bool:
    return all(key in whole and whole[key] == value for key, value in part.items())


def test_a_brief_load_holds_what_a_list_shows_on_every_engine(cell_db):
    """``load(brief=True)`` reads the row's list columns and the rest in one union
    whose columns the first select types: every value it holds must equal the
    whole load's, typed alike (booleans, times, decoded JSON) on every engine."""
    with session_for(cell_db) as s:
        rich = _server(s, 1, host="h1", locked=True, display_description="d",
                       updated_at=T0 + dt.timedelta(hours=1))
        plain = _server(s, 2)
        hidden = _server(s, 3, hidden=True)
        s.flush()
        s.add(cm.InstanceExtra(instance_uuid=rich, flavor=SMALL, keypairs=[],
                               request_networks=[]))
        for tag in ("zeta", "alpha"):
            s.add(cm.Tag(resource_id=rich, tag=tag))
        for n, key in enumerate(("k2", "k1")):
            s.add(cm.InstanceMetadata(instance_uuid=rich, key=key, value=f"v{n}"))
        s.add(cm.InstanceSystemMetadata(instance_uuid=rich, key="locked_reason", value="why"))
        s.add(cm.InstanceSystemMetadata(instance_uuid=rich, key="other", value="x"))
        for n in range(2):
            s.add(cm.VirtualInterface(uuid=f"vif-{n}", address=f"fa:16:3e:00:00:0{n}",
                                      network_id=f"net-{n}", instance_uuid=rich,
                                      info={"fixed_ips": [{"ip_address": f"10.0.0.{n}"}],
                                            "network_name": f"n{n}"}))
            s.add(cm.InstanceFault(instance_uuid=rich, code=500 + n, message=f"boom {n}",
                                   details="trace", created_at=T0 + dt.timedelta(seconds=n)))
        for n, volume in enumerate((None, "vol-1", "vol-2")):
            s.add(cm.BlockDeviceMapping(
                uuid=str(uuidlib.uuid4()), instance_uuid=rich,
                source_type="volume" if volume else "image",
                destination_type="volume" if volume else "local", volume_id=volume,
                delete_on_termination=n == 1, device_name=f"/dev/vd{'abc'[n]}",
                boot_index=None if volume else 0))
    with session_for(cell_db) as s:
        whole = server_list.load(s, [rich, plain, hidden])
        brief = server_list.load(s, [rich, plain, hidden], brief=True)
    assert set(brief) == set(whole) == {rich, plain}
    for uuid in (rich, plain):
        parts = ("vifs", "bdms", "fault", "system_metadata")
        columns = {k: v for k, v in brief[uuid].items() if k not in parts}
        assert set(columns) == {*server_list.LIST_COLUMNS, "flavor", "tags", "metadata"}
        assert _subset(columns, whole[uuid])
    got, full = brief[rich], whole[rich]
    assert got["tags"] == ["alpha", "zeta"]
    assert list(got["metadata"].items()) == [("k2", "v0"), ("k1", "v1")]
    assert got["system_metadata"] == {"locked_reason": "why"}
    assert len(got["vifs"]) == 2 and all(
        _subset(b, w) for b, w in zip(got["vifs"], full["vifs"], strict=True))
    assert got["vifs"][1]["info"]["fixed_ips"] == [{"ip_address": "10.0.0.1"}]
    volumes = [b for b in full["bdms"] if b["volume_id"]]
    assert [b["volume_id"] for b in got["bdms"]] == ["vol-1", "vol-2"]
    assert all(_subset(b, w) for b, w in zip(got["bdms"], volumes, strict=True))
    assert got["bdms"][0]["delete_on_termination"] is True
    assert got["bdms"][1]["delete_on_termination"] is False
    assert got["fault"]["message"] == "boom 1" and _subset(got["fault"], full["fault"])
    assert got["fault"]["created_at"] == T0 + dt.timedelta(seconds=1)
    assert brief[plain]["fault"] is None and brief[plain]["vifs"] == []


def test_a_brief_load_reads_a_database_of_the_deployments_collation(db_factory):
    """A deployment's MariaDB databases have a collation of their own, not the
    connection's: a union that cast NULL to text took the connection's and MariaDB
    refused it (1271, illegal mix of collations), so the cell's servers were left
    out of every list as if the cell were down."""
    url = db_factory.create(collation=databases.MARIADB_COLLATION)
    migration.sync(url, "cell")
    with session_for(url) as s:
        uuid = _server(s, 1)
        s.flush()
        s.add(cm.InstanceMetadata(instance_uuid=uuid, key="k", value="v"))
        s.add(cm.BlockDeviceMapping(uuid=str(uuidlib.uuid4()), instance_uuid=uuid,
                                    source_type="volume", destination_type="volume",
                                    volume_id="vol-1", delete_on_termination=True,
                                    device_name="/dev/vda", boot_index=0))
    with session_for(url) as s:
        brief = server_list.load(s, [uuid], brief=True)
    assert brief[uuid]["metadata"] == {"k": "v"}
    assert brief[uuid]["bdms"] == [{"volume_id": "vol-1", "delete_on_termination": True}]
