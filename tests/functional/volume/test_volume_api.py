"""The Block storage API end to end: volumes, their actions, types, attachments,
bad input answered in Cinder's envelope with nothing changed, policy, and races."""

from __future__ import annotations

import threading
import uuid

import volapi as va
from volapi import ADMIN, USER, call, create, show

ALT = "transcell-alt"


def _ids(cloud, cloud_name: str = USER, query: str = "") -> list[str]:
    resp = call(cloud, "GET", f"/volumes{query}", cloud_name)
    assert resp.status_code == 200, resp.text
    return [v["id"] for v in resp.json()["volumes"]]


def test_versions_and_microversions(vcloud):
    resp = vcloud.request("GET", "/volume/", token=None)
    assert resp.status_code == 300
    version = resp.json()["versions"][0]
    assert (version["id"], version["min_version"], version["version"]) == \
        ("v3.0", "3.0", "3.44")
    assert version["links"][-1]["href"] == f"{vcloud.base_url}/volume/v3/"
    assert vcloud.request("GET", "/volume/v3/", token=None).status_code == 200
    resp = call(vcloud, "GET", "/volumes", version="3.45")
    assert resp.status_code == 406 and "notAcceptable" in resp.json()
    resp = call(vcloud, "GET", "/volumes", version="3.27")
    assert resp.headers["OpenStack-API-Version"] == "volume 3.27"
    # attachments appear at 3.27
    resp = call(vcloud, "GET", "/attachments", version="3.26")
    assert resp.status_code == 404 and "itemNotFound" in resp.json()


def test_catalog_names_block_storage_and_volumev3(vcloud):
    catalog = vcloud.sdk(USER).session.auth.get_access(vcloud.sdk(USER).session).service_catalog
    for service_type in ("block-storage", "volumev3"):
        url = catalog.url_for(service_type=service_type, interface="public")
        assert url == f"{vcloud.base_url}/volume/v3"


def test_create_show_list_update_extend_delete(vcloud):
    volume = create(vcloud, name="data-1", description="first", metadata={"k": "v"})
    assert volume["status"] == "available" and volume["size"] == 1
    assert volume["volume_type"] == "shared" and volume["bootable"] == "false"
    # a user does not see where it lives
    assert "os-vol-host-attr:host" not in volume and "migration_status" not in volume
    found = show(vcloud, volume["id"])
    assert found["os-vol-host-attr:host"] == "transcell@shared#shared"
    # project-scoped URL and unscoped URL both serve it
    project = found["os-vol-tenant-attr:tenant_id"]
    resp = vcloud.request("GET", f"/volume/v3/{project}/volumes/{volume['id']}", cloud=USER,
                          version=None)
    assert resp.status_code == 200 and resp.json()["volume"]["name"] == "data-1"

    assert volume["id"] in _ids(vcloud)
    resp = call(vcloud, "GET", "/volumes/detail?name=data-1")
    assert [v["id"] for v in resp.json()["volumes"]] == [volume["id"]]
    assert resp.json()["volumes"][0]["metadata"] == {"k": "v"}
    # Cinder's old name for the field filters and sorts too, and is never shown
    resp = call(vcloud, "GET", "/volumes/detail?display_name=data-1&sort=display_name:asc")
    assert [v["id"] for v in resp.json()["volumes"]] == [volume["id"]]
    assert "display_name" not in resp.json()["volumes"][0]

    resp = call(vcloud, "PUT", f"/volumes/{volume['id']}",
                json={"volume": {"name": "data-1b", "metadata": {"a": "b"}}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["volume"]["name"] == "data-1b"
    assert resp.json()["volume"]["metadata"] == {"a": "b"}

    path = va.volume_path(vcloud, volume["id"])
    va.write_at(path, 4096, b"kept through extend")
    resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action",
                json={"os-extend": {"new_size": 2}})
    assert resp.status_code == 202, resp.text
    assert show(vcloud, volume["id"])["size"] == 2
    assert va.read_at(path, 4096, 19) == b"kept through extend"
    import os
    assert os.path.getsize(path) == 2 * 1024 ** 3

    resp = call(vcloud, "DELETE", f"/volumes/{volume['id']}")
    assert resp.status_code == 202, resp.text
    assert call(vcloud, "GET", f"/volumes/{volume['id']}").status_code == 404
    assert not os.path.exists(path)


def test_create_from_image_and_from_volume_and_types(vcloud):
    images = vcloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"]
    image = images[0]
    size = max(1, -(-int(image.get("virtual_size") or image["size"]) // 1024 ** 3))
    volume = create(vcloud, name="boot", imageRef=image["id"], size=size,
                    volume_type="local-cell1")
    assert volume["status"] == "available" and volume["bootable"] == "true"
    assert "volume_image_metadata" not in volume  # POST answers without it, as Cinder
    assert show(vcloud, volume["id"])["volume_image_metadata"]["image_id"] == image["id"]
    path = va.volume_path(vcloud, volume["id"])
    assert "/local-cell1/" in path

    clone = create(vcloud, name="clone", source_volid=volume["id"], size=size + 1)
    assert clone["source_volid"] == volume["id"] and clone["volume_type"] == "local-cell1"
    clone_path = va.volume_path(vcloud, clone["id"])
    assert va.read_at(clone_path, 0, 1 << 20) == va.read_at(path, 0, 1 << 20)

    resp = call(vcloud, "GET", "/types", ADMIN)
    types = {t["name"]: t for t in resp.json()["volume_types"]}
    assert set(types) == {"shared", "local-cell1", "local-cell2"}
    assert types["local-cell2"]["extra_specs"] == {"volume_backend_name": "local-cell2"}
    resp = call(vcloud, "GET", "/types/default")
    assert resp.json()["volume_type"]["name"] == "shared"
    assert "extra_specs" not in resp.json()["volume_type"]
    for vid in (clone["id"], volume["id"]):
        assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


def test_bad_input_is_refused_in_cinders_envelope_and_changes_nothing(vcloud):
    before = sorted(_ids(vcloud, ADMIN, "?all_tenants=1"))
    cases = [
        ({"size": -1}, 400, "badRequest"),
        ({"size": "lots"}, 400, "badRequest"),
        ({"size": 1, "volume_type": "no-such-type"}, 404, "itemNotFound"),
        ({"size": 1, "source_volid": "not-a-uuid"}, 400, "badRequest"),
        ({"size": 1, "source_volid": str(uuid.uuid4())}, 404, "itemNotFound"),
        ({"size": 1, "imageRef": str(uuid.uuid4())}, 400, "badRequest"),
        ({"size": 1, "snapshot_id": str(uuid.uuid4())}, 404, "itemNotFound"),
        ({"size": 2 ** 31 - 1}, 400, "badRequest"),  # more than the filesystem holds
    ]
    for fields, status, name in cases:
        resp = call(vcloud, "POST", "/volumes", json={"volume": fields})
        assert resp.status_code == status, (fields, resp.text)
        assert set(resp.json()) == {name}, resp.text
        assert resp.json()[name]["code"] == status and resp.json()[name]["message"]
    resp = call(vcloud, "POST", "/volumes", data=b"{not json",
                headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "badRequest" in resp.json()
    assert call(vcloud, "GET", "/volumes/not-a-uuid").status_code == 404
    assert sorted(_ids(vcloud, ADMIN, "?all_tenants=1")) == before

    volume = create(vcloud, name="unchanged", metadata={"group": "paging"})
    for body in ({"os-extend": {"new_size": 1}}, {"os-extend": {"new_size": -3}},
                 {"os-extend": {"new_size": 2 ** 31 - 1}},
                 {"os-extend": {}}, {"os-no-such-action": {}},
                 {"os-set_bootable": {"bootable": "perhaps"}}):
        resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action", json=body)
        assert resp.status_code == 400 and "badRequest" in resp.json(), (body, resp.text)
    resp = call(vcloud, "PUT", f"/volumes/{volume['id']}",
                json={"volume": {"size": 5, "name": "x"}})
    assert resp.status_code == 400
    after = show(vcloud, volume["id"])
    assert (after["size"], after["name"], after["bootable"], after["status"]) == \
        (1, "unchanged", "false", "available")
    # paging
    second = create(vcloud, name="unchanged-2", metadata={"group": "paging"})
    query = '/volumes/detail?limit=1&sort=name:asc&metadata={"group":"paging"}'
    page = call(vcloud, "GET", query).json()
    assert [v["id"] for v in page["volumes"]] == [volume["id"]]
    next_url = page["volumes_links"][0]["href"]
    assert next_url.startswith(f"{vcloud.base_url}/volume/v3/volumes/detail?")
    resp = vcloud.request("GET", next_url.removeprefix(vcloud.base_url), cloud=USER)
    assert [v["id"] for v in resp.json()["volumes"]] == [second["id"]]
    # a full page links onwards (as Cinder's do), to an empty last page
    next_url = resp.json()["volumes_links"][0]["href"]
    resp = vcloud.request("GET", next_url.removeprefix(vcloud.base_url), cloud=USER)
    assert resp.json() == {"volumes": []}
    # Tempest's way of writing a metadata filter (a Python literal) works too
    resp = call(vcloud, "GET", "/volumes/detail?metadata={'group': 'paging'}")
    assert len(resp.json()["volumes"]) == 2
    assert call(vcloud, "GET", "/volumes/").status_code == 404  # an empty id
    assert call(vcloud, "DELETE", "/volumes/").status_code == 404
    assert call(vcloud, "GET", "/volumes?sort=bogus:asc").status_code == 400
    assert call(vcloud, "GET", "/volumes?no_such_filter=1", version="3.31").status_code == 400
    for vid in (volume["id"], second["id"]):
        assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


def test_attachments_reach_only_cells_the_backend_reaches(vcloud):
    volume = create(vcloud, name="local", volume_type="local-cell1")
    server = str(uuid.uuid4())
    far = {"host": "cell2-host1", "mountpoint": "/dev/vdb"}
    near = {"host": "cell1-host2", "mountpoint": "/dev/vdb"}
    body = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": server,
                           "connector": far}}
    resp = call(vcloud, "POST", "/attachments", json=body)
    assert resp.status_code == 400, resp.text
    message = resp.json()["badRequest"]["message"]
    assert "local-cell1" in message and "cell2" in message
    assert show(vcloud, volume["id"])["status"] == "available"
    assert call(vcloud, "GET", f"/attachments?volume_id={volume['id']}").json() == \
        {"attachments": []}

    # reserve without a connector, then connect from a host of a reachable cell
    body["attachment"].pop("connector")
    resp = call(vcloud, "POST", "/attachments", json=body)
    assert resp.status_code == 200, resp.text
    attachment = resp.json()["attachment"]
    assert attachment["status"] == "reserved" and attachment["connection_info"] == {}
    assert show(vcloud, volume["id"])["status"] == "reserved"
    resp = call(vcloud, "PUT", f"/attachments/{attachment['id']}",
                json={"attachment": {"connector": far}})
    assert resp.status_code == 400 and "cell2" in resp.json()["badRequest"]["message"]
    resp = call(vcloud, "PUT", f"/attachments/{attachment['id']}",
                json={"attachment": {"connector": near}})
    assert resp.status_code == 200, resp.text
    info = resp.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "file"
    assert info["data"]["device_path"] == va.volume_path(vcloud, volume["id"])
    assert info["data"]["backend"] == "local-cell1"

    # another server cannot take a non-multiattach volume
    other = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": str(uuid.uuid4())}}
    resp = call(vcloud, "POST", "/attachments", json=other)
    assert resp.status_code == 400 and "badRequest" in resp.json()

    resp = call(vcloud, "POST", f"/attachments/{attachment['id']}/action",
                json={"os-complete": None})
    assert resp.status_code == 204, resp.text
    found = show(vcloud, volume["id"])
    assert found["status"] == "in-use"
    assert [(a["server_id"], a["host_name"], a["device"]) for a in found["attachments"]] == \
        [(server, "cell1-host2", "/dev/vdb")]
    # an attached volume is neither deleted nor (before 3.42) extended
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 400
    resp = call(vcloud, "POST", f"/volumes/{volume['id']}/action", version="3.41",
                json={"os-extend": {"new_size": 2}})
    assert resp.status_code == 400
    assert show(vcloud, volume["id"])["size"] == 1

    resp = call(vcloud, "DELETE", f"/attachments/{attachment['id']}")
    assert resp.status_code == 200 and resp.json() == {"attachments": []}
    assert show(vcloud, volume["id"])["status"] == "available"
    assert call(vcloud, "GET", f"/attachments/{attachment['id']}").status_code == 404
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_policy_other_projects_and_admin_actions(vcloud):
    volume = create(vcloud, name="mine")
    vid = volume["id"]
    assert call(vcloud, "GET", f"/volumes/{vid}", ALT).status_code == 404
    assert vid not in _ids(vcloud, ALT)
    assert call(vcloud, "DELETE", f"/volumes/{vid}", ALT).status_code == 404
    resp = call(vcloud, "POST", "/attachments", ALT, json={"attachment": {
        "volume_uuid": vid, "instance_uuid": str(uuid.uuid4())}})
    assert resp.status_code == 404
    resp = call(vcloud, "POST", f"/volumes/{vid}/action",
                json={"os-migrate_volume": {"host": "transcell@local-cell1#local-cell1"}})
    assert resp.status_code == 403 and "forbidden" in resp.json()
    resp = call(vcloud, "POST", f"/volumes/{vid}/action",
                json={"os-reset_status": {"status": "error"}})
    assert resp.status_code == 403
    assert call(vcloud, "GET", "/volumes?all_tenants=1").status_code == 403
    assert call(vcloud, "GET", "/os-transcell-moves/copies").status_code == 403
    assert call(vcloud, "GET", f"/os-transcell-moves/volumes/{vid}/backend").status_code \
        == 403
    # a project in the URL must be the token's
    resp = vcloud.request("GET", f"/volume/v3/{uuid.uuid4().hex}/volumes", cloud=USER)
    assert resp.status_code == 400
    assert show(vcloud, vid)["status"] == "available"
    # an administrator may reset it
    resp = call(vcloud, "POST", f"/volumes/{vid}/action", ADMIN,
                json={"os-reset_status": {"status": "error"}})
    assert resp.status_code == 202
    assert show(vcloud, vid)["status"] == "error"
    assert call(vcloud, "DELETE", f"/volumes/{vid}").status_code == 202


def test_two_deletes_at_once_one_wins(vcloud):
    for _ in range(3):
        volume = create(vcloud, name="raced")
        answers: list[int] = []
        barrier = threading.Barrier(2)

        def delete(vid: str = volume["id"], barrier: threading.Barrier = barrier,
                   answers: list[int] = answers) -> None:
            barrier.wait()
            answers.append(call(vcloud, "DELETE", f"/volumes/{vid}").status_code)

        threads = [threading.Thread(target=delete) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers)[0] == 202 and sorted(answers)[1] in (202, 400, 404), answers
        assert answers.count(202) >= 1
        assert call(vcloud, "GET", f"/volumes/{volume['id']}").status_code == 404


def test_delete_races_an_attachment(vcloud):
    volume = create(vcloud, name="contested")
    answers: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def delete() -> None:
        barrier.wait()
        answers["delete"] = call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code

    def attach() -> None:
        barrier.wait()
        answers["attach"] = call(vcloud, "POST", "/attachments", json={"attachment": {
            "volume_uuid": volume["id"], "instance_uuid": str(uuid.uuid4())}}).status_code

    threads = [threading.Thread(target=delete), threading.Thread(target=attach)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gone = call(vcloud, "GET", f"/volumes/{volume['id']}").status_code == 404
    if answers["delete"] == 202:
        assert gone and answers["attach"] in (400, 404)
    else:
        assert answers == {"delete": 400, "attach": 200}
        assert show(vcloud, volume["id"])["status"] == "reserved"


def test_metadata_and_availability_zones(vcloud):
    volume = create(vcloud, name="tagged", metadata={"a": "1"})
    base = f"/volumes/{volume['id']}/metadata"
    resp = call(vcloud, "POST", base, json={"metadata": {"b": "2"}})
    assert resp.status_code == 200 and resp.json()["metadata"] == {"a": "1", "b": "2"}
    resp = call(vcloud, "PUT", f"{base}/b", json={"meta": {"b": "3"}})
    assert resp.status_code == 200 and resp.json() == {"meta": {"b": "3"}}
    assert call(vcloud, "GET", f"{base}/b").json() == {"meta": {"b": "3"}}
    assert call(vcloud, "PUT", f"{base}/b", json={"meta": {"c": "3"}}).status_code == 400
    assert call(vcloud, "DELETE", f"{base}/a").status_code == 200
    assert call(vcloud, "DELETE", f"{base}/a").status_code == 404
    assert call(vcloud, "GET", base).json() == {"metadata": {"b": "3"}}
    resp = call(vcloud, "PUT", base, json={"metadata": {"z": "9"}})
    assert resp.json() == {"metadata": {"z": "9"}}
    assert call(vcloud, "POST", base, json={"metadata": {"k": 5}}).status_code == 400
    assert call(vcloud, "GET", base, ALT).status_code == 404
    assert show(vcloud, volume["id"])["metadata"] == {"z": "9"}
    zones = call(vcloud, "GET", "/os-availability-zone").json()["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}}]
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_attach_actions_before_attachments_api(vcloud):
    volume = create(vcloud, name="old-flow", volume_type="local-cell2")
    act = f"/volumes/{volume['id']}/action"

    def post(body: dict, expect: int) -> dict:
        resp = call(vcloud, "POST", act, json=body, version="3.0")
        assert resp.status_code == expect, (body, resp.text)
        return resp.json() if resp.content else {}

    post({"os-reserve": None}, 202)
    post({"os-reserve": None}, 400)  # reserving a reserved volume
    assert show(vcloud, volume["id"])["status"] == "attaching"
    post({"os-unreserve": None}, 202)
    assert show(vcloud, volume["id"])["status"] == "available"
    body = post({"os-initialize_connection": {"connector": {"host": "cell2-host1"}}}, 200)
    assert body["connection_info"]["data"]["backend"] == "local-cell2"
    post({"os-initialize_connection": {"connector": {"host": "cell1-host1"}}}, 400)
    server = str(uuid.uuid4())
    post({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc"}}, 202)
    found = show(vcloud, volume["id"])
    assert found["status"] == "in-use"
    [entry] = found["attachments"]
    assert (entry["id"], entry["server_id"], entry["device"]) == \
        (volume["id"], server, "/dev/vdc")
    post({"os-begin_detaching": None}, 202)
    post({"os-roll_detaching": None}, 202)
    assert show(vcloud, volume["id"])["status"] == "in-use"
    post({"os-detach": {}}, 202)
    assert show(vcloud, volume["id"])["status"] == "available"
    assert show(vcloud, volume["id"])["attachments"] == []
    post({"os-detach": {}}, 202)  # nothing left to detach: nothing changes
    assert show(vcloud, volume["id"])["status"] == "available"
    for readonly in (True, False):
        post({"os-update_readonly_flag": {"readonly": readonly}}, 202)
        assert show(vcloud, volume["id"])["metadata"]["readonly"] == str(readonly)
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 202


def test_force_detach_and_force_delete_are_for_administrators(vcloud):
    volume = create(vcloud, name="forced")
    act = f"/volumes/{volume['id']}/action"
    assert call(vcloud, "POST", act, json={"os-attach": {
        "instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdb"}}).status_code == 202
    attachment = show(vcloud, volume["id"])["attachments"][0]["attachment_id"]
    assert call(vcloud, "POST", act, ADMIN,
                json={"os-reset_status": {"status": "error"}}).status_code == 202
    body = {"os-force_detach": {"attachment_id": attachment, "connector": None}}
    assert call(vcloud, "POST", act, json=body).status_code == 403
    assert call(vcloud, "POST", act, ADMIN, json=body).status_code == 202
    found = show(vcloud, volume["id"])
    assert (found["status"], found["attachments"]) == ("available", [])
    assert call(vcloud, "POST", act, ADMIN,
                json={"os-reset_status": {"status": "maintenance"}}).status_code == 202
    assert call(vcloud, "DELETE", f"/volumes/{volume['id']}").status_code == 400
    assert call(vcloud, "POST", act, json={"os-force_delete": {}}).status_code == 403
    assert call(vcloud, "POST", act, ADMIN, json={"os-force_delete": {}}).status_code == 202
    assert call(vcloud, "GET", f"/volumes/{volume['id']}").status_code == 404
    pools = call(vcloud, "GET", "/scheduler-stats/get_pools?detail=true", ADMIN).json()
    by_name = {p["name"]: p["capabilities"] for p in pools["pools"]}
    assert by_name["transcell@local-cell1#local-cell1"]["transcell:cells"] == ["cell1"]
    assert by_name["transcell@shared#shared"]["transcell:cells"] == ["cell1", "cell2"]
    assert call(vcloud, "GET", "/scheduler-stats/get_pools").status_code == 403
