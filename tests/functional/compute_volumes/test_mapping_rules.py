"""The rules of block device mappings and attachment bodies, without a cloud."""

from __future__ import annotations

import json

import pytest

from transcell.api.compute.microversion import APIVersion
from transcell.api.compute.schemas import volume_attachments as schema
from transcell.api.compute.views import volume_attachments as view
from transcell.compute import bdm, volumes
from transcell.exception import Invalid

IMAGE = "c0ffee00-0000-4000-8000-000000000001"
VOLUME = "c0ffee00-0000-4000-8000-000000000002"


def test_device_names_skip_the_taken_and_go_past_z():
    assert bdm.device_names(2, {"/dev/vda", "/dev/vdb"}) == ["/dev/vdc", "/dev/vdd"]
    names = bdm.device_names(30, set())
    assert names[0] == "/dev/vdb" and names[24] == "/dev/vdz" and names[25] == "/dev/vdaa"
    assert len(set(names)) == 30


def test_normalize_boot_mappings():
    found = volumes.normalize([
        {"uuid": IMAGE, "source_type": "image", "destination_type": "volume",
         "boot_index": "0", "volume_size": "2"},
        {"uuid": VOLUME, "source_type": "volume", "boot_index": -1,
         "delete_on_termination": "yes"},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
         "boot_index": 1}])
    assert [(m["source_type"], m["boot_index"], m["volume_size"], m["delete_on_termination"])
            for m in found] == [("image", 0, 2, False), ("volume", None, None, True),
                                ("blank", 1, 1, False)]
    assert found[0]["image_id"] == IMAGE and found[1]["volume_id"] == VOLUME
    assert volumes.boot_disk(found) is found[0]
    # an image kept local is the boot disk and is deleted with the server by default
    [local] = volumes.normalize([{"uuid": IMAGE, "source_type": "image", "boot_index": 0}])
    assert local["destination_type"] == "local" and local["delete_on_termination"] is True


@pytest.mark.parametrize(("mappings", "message"), [
    ([{"uuid": IMAGE, "source_type": "image", "destination_type": "volume",
       "boot_index": 0}], "non-zero size"),
    ([{"uuid": VOLUME, "source_type": "volume", "boot_index": 1}], "Boot sequence"),
    ([{"uuid": VOLUME, "source_type": "volume", "boot_index": 0},
      {"uuid": IMAGE, "source_type": "image", "destination_type": "volume", "boot_index": 0,
       "volume_size": 1}], "Boot sequence"),
    ([{"uuid": VOLUME, "source_type": "volume", "boot_index": "x"}], "boot_index"),
    ([{"source_type": "snapshot", "boot_index": 0}], "needs a uuid"),
    ([{"source_type": "snapshot", "uuid": VOLUME, "destination_type": "local",
       "boot_index": 0}], "not supported"),
    ([{"source_type": "blank", "destination_type": "local", "volume_size": 1}],
     "not supported"),
    ([{"source_type": "blank", "destination_type": "volume", "volume_size": 1,
       "boot_index": 0, "uuid": VOLUME}], "Invalid device UUID"),
    ([{"source_type": "volume", "boot_index": 0}], "needs a uuid"),
    ([{"uuid": VOLUME, "source_type": "volume", "boot_index": 0,
       "delete_on_termination": "maybe"}], "boolean"),
    ([{"uuid": VOLUME, "source_type": "volume", "boot_index": 0, "device_name": "vdb"},
      {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
       "device_name": "vdb"}], "used twice"),
])
def test_normalize_refuses(mappings, message):
    with pytest.raises(Invalid) as caught:
        volumes.normalize(mappings)
    assert message in caught.value.message


def test_snapshot_and_blank_boot_disks_as_nova_accepts_them():
    [snap] = volumes.normalize([{"source_type": "snapshot", "uuid": VOLUME,
                                 "destination_type": "volume", "boot_index": 0}])
    assert (snap["snapshot_id"], snap["volume_id"], snap["volume_size"]) == \
        (VOLUME, None, None)
    [blank] = volumes.normalize([{"source_type": "blank", "destination_type": "volume",
                                  "volume_size": 1, "boot_index": 0}])
    assert volumes.boot_disk([blank]) is blank


def test_an_images_mappings_merge_under_the_requests():
    image = {"id": IMAGE, "bdm_v2": "True", "block_device_mapping": json.dumps([
        {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": VOLUME,
         "volume_id": None, "boot_index": 0, "device_name": "/dev/vda", "volume_size": 2,
         "delete_on_termination": True, "no_device": None},
        {"source_type": "snapshot", "destination_type": "volume", "snapshot_id": IMAGE,
         "boot_index": None, "device_name": "/dev/vdb", "volume_size": 1},
        {"no_device": True, "device_name": "/dev/vdc"}])}
    defined = volumes.image_mappings(image)
    assert [(m["snapshot_id"], m["boot_index"], m["volume_size"]) for m in defined] == \
        [(VOLUME, 0, 2), (IMAGE, None, 1)]
    assert volumes.image_mappings({"block_device_mapping": "[]"}) == []
    assert volumes.image_mappings({"id": IMAGE}) == []
    # the request's device wins, and the image's boot disk replaces the request's image one
    requested = volumes.normalize([
        {"uuid": IMAGE, "source_type": "image", "boot_index": 0},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 3,
         "device_name": "/dev/vdb"}])
    merged = volumes.merge_image_mappings(defined, requested)
    assert [(m["source_type"], m["device_name"], m["boot_index"]) for m in merged] == \
        [("blank", "/dev/vdb", None), ("snapshot", "/dev/vda", 0)]
    with pytest.raises(Invalid):
        volumes.merge_image_mappings(defined, volumes.normalize([
            {"uuid": VOLUME, "source_type": "volume", "boot_index": 0,
             "device_name": "/dev/vdd"}]))
    with pytest.raises(Invalid):
        volumes.image_mappings({"bdm_v2": True, "block_device_mapping": "{not json"})


def test_is_volume_backed():
    assert bdm.is_volume_backed([{"boot_index": 0, "destination_type": "volume"}])
    assert not bdm.is_volume_backed([{"boot_index": 0, "destination_type": "local"},
                                     {"boot_index": None, "destination_type": "volume"}])


ROW = {"uuid": "b-1", "volume_id": VOLUME, "instance_uuid": "s-1", "device_name": "/dev/vdb",
       "tag": "db", "delete_on_termination": True, "attachment_id": "a-1"}


@pytest.mark.parametrize(("version", "expected"), [
    ("2.1", {"id": VOLUME, "volumeId": VOLUME, "serverId": "s-1", "device": "/dev/vdb"}),
    ("2.70", {"id": VOLUME, "volumeId": VOLUME, "serverId": "s-1", "device": "/dev/vdb",
              "tag": "db"}),
    ("2.79", {"id": VOLUME, "volumeId": VOLUME, "serverId": "s-1", "device": "/dev/vdb",
              "tag": "db", "delete_on_termination": True}),
    ("2.89", {"volumeId": VOLUME, "serverId": "s-1", "device": "/dev/vdb", "tag": "db",
              "delete_on_termination": True, "attachment_id": "a-1", "bdm_uuid": "b-1"}),
])
def test_attachment_bodies_by_microversion(version, expected):
    assert view.attachment(APIVersion.parse(version), ROW) == expected


def test_update_body_grows_at_2_85():
    from transcell.api.compute.common import validate
    body = {"volumeAttachment": {"volumeId": VOLUME, "delete_on_termination": True}}
    with pytest.raises(Invalid):
        validate(schema.update(APIVersion.parse("2.84")), body)
    validate(schema.update(APIVersion.parse("2.85")), body)
    validate(schema.create(APIVersion.parse("2.79")), body)
    with pytest.raises(Invalid):
        validate(schema.create(APIVersion.parse("2.78")), body)
