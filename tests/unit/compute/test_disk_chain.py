"""Freezing a guest's disk layer by layer for pre-copy, and folding the layers back."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading

import pytest

from transcell.compute import snapshot
from transcell.compute.virt import disk, disk_chain
from transcell.image import pipeline

MiB = 1024 * 1024
CHUNK = 4 * MiB
SIZE = 24 * MiB


def _data(seed: str, length: int) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(length)


@pytest.fixture(params=["qcow2", "raw"])
def root(request, tmp_path):
    """A guest's root disk: a qcow2 overlay on a raw base, or a raw disk of its own."""
    base = str(tmp_path / "base.raw")
    with open(base, "wb") as f:
        f.write(_data("base", 8 * MiB))
    path = str(tmp_path / "disk")
    if request.param == "qcow2":
        disk.create_qcow2_overlay(base, path, SIZE, "raw")
    else:
        disk.create_raw_copy(base, path, SIZE, "raw")
    disk.guest_write(path, 1 * MiB, _data("first", 5000), request.param)
    return path, request.param


def _view(path: str) -> bytes:
    return disk.guest_read(path, 0, SIZE)


def test_freeze_keeps_the_guest_view_and_later_writes_go_on_top(root):
    path, fmt = root
    before = _view(path)
    frozen, frozen_fmt = disk_chain.freeze(path, fmt)
    assert frozen_fmt == fmt and frozen == path + ".pre-1"
    assert disk_chain.root_of(frozen) == disk_chain.root_of(path) == path
    assert disk.info(path)["format"] == "qcow2"
    assert _view(path) == before
    disk.guest_write(path, 9 * MiB, _data("second", 2 * MiB), "qcow2")  # inside chunk 2
    # the frozen image did not see the write; the guest did
    assert disk.guest_read(frozen, 0, SIZE, frozen_fmt) == before
    assert _view(path) != before
    own = [(e["start"], e["length"]) for e in disk.allocation_map(path, "qcow2")
           if e["depth"] == 0 and e.get("present", True)]
    assert own == [(9 * MiB, 2 * MiB)]
    second, _ = disk_chain.freeze(path, "qcow2")
    assert second == path + ".pre-2"
    assert disk_chain.frozen_layers(path) == [path + ".pre-1", path + ".pre-2"]


def test_round_items_send_only_what_the_frozen_layer_holds(root):
    path, fmt = root
    frozen, frozen_fmt = disk_chain.freeze(path, fmt)
    size, items = snapshot.whole_items(frozen, frozen_fmt, CHUNK)
    digests = [pipeline.zero_digest(i) if isinstance(i, int)
               else hashlib.sha256(i.read()).hexdigest() for i in items]
    previous = {"chunk_size": CHUNK, "size": size, "chunks": digests}
    disk.guest_write(path, 10 * MiB, _data("second", 3 * MiB), "qcow2")  # chunks 2 and 3
    disk.guest_write(path, 20 * MiB, _data("third", 10), "qcow2")       # chunk 5
    layer, layer_fmt = disk_chain.freeze(path, "qcow2")
    size2, items2, changed = snapshot.round_items(layer, layer_fmt, previous,
                                                  pipeline.zero_digest)
    assert size2 == size and changed == [2, 3, 5]
    got = list(items2)
    for index, item in enumerate(got):
        if index in changed:
            data = item.read()
            assert data == disk.guest_read(layer, index * CHUNK, CHUNK, layer_fmt)
        elif digests[index] == pipeline.zero_digest(CHUNK):
            assert item == CHUNK
        else:
            assert item == ("known", digests[index], CHUNK)


def test_round_items_refuse_a_disk_of_another_size(root):
    path, fmt = root
    layer, layer_fmt = disk_chain.freeze(path, fmt)
    with pytest.raises(snapshot.NotADelta):
        snapshot.round_items(layer, layer_fmt, {"chunk_size": CHUNK, "size": SIZE + CHUNK,
                                                "chunks": []}, pipeline.zero_digest)


def _two_rounds_written(path: str, fmt: str) -> bytes:
    """Freeze twice with a write after each, as two pre-copy rounds; the guest's view."""
    disk_chain.freeze(path, fmt)
    disk.guest_write(path, 2 * MiB, _data("a", 100), "qcow2")
    disk_chain.freeze(path, "qcow2")
    disk.guest_write(path, 13 * MiB, _data("b", 100), "qcow2")
    return _view(path)


def test_collapse_folds_every_layer_back_into_one_file_of_the_own_format(root):
    path, fmt = root
    view = _two_rounds_written(path, fmt)
    assert disk_chain.collapse(path, fmt) is True
    assert disk_chain.frozen_layers(path) == []
    assert disk.info(path)["format"] == fmt
    assert disk.guest_read(path, 0, SIZE, fmt) == view
    assert disk_chain.collapse(path, fmt) is False
    assert sorted(os.listdir(os.path.dirname(path))) == ["base.raw", "disk"]


def test_a_fold_asks_whether_to_go_on_under_the_lock_a_freeze_takes(root):
    """The audit's 'no move uses this chain' must hold until the fold is done: it is
    asked with the writer lock held, and a true answer leaves the chain alone."""
    path, fmt = root
    view = _two_rounds_written(path, fmt)
    layers = disk_chain.frozen_layers(path)
    asked = []

    def moving() -> bool:
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # a freeze would wait here
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        asked.append(True)
        return True

    assert disk_chain.collapse(path, fmt, unless=moving) is False
    assert asked == [True]
    assert disk_chain.frozen_layers(path) == layers
    assert _view(path) == view
    assert disk_chain.collapse(path, fmt, unless=lambda: False) is True
    assert disk_chain.frozen_layers(path) == []
    assert disk.guest_read(path, 0, SIZE, fmt) == view


def test_a_freeze_that_died_before_its_swap_is_finished_by_the_next(root):
    path, fmt = root
    view = _view(path)
    os.link(path, path + ".pre-1")  # what a freeze killed after its link leaves
    frozen, _ = disk_chain.freeze(path, fmt)
    assert frozen == path + ".pre-1"
    assert disk_chain.frozen_layers(path) == [frozen]
    assert _view(path) == view
    assert disk_chain.collapse(path, fmt)
    assert disk.guest_read(path, 0, SIZE, fmt) == view


def test_writes_racing_freezes_all_land_in_the_guest_view(root):
    """A write that opened the top just before a freeze must not land in a frozen
    layer unseen: every write is in the final view."""
    path, fmt = root
    writes = {i * 512 * 1024: _data(f"w{i}", 4096) for i in range(24)}
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            for offset, data in writes.items():
                disk.guest_write(path, offset, data)
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(4):
        disk_chain.freeze(path, disk.info(path)["format"] if not disk_chain.frozen_layers(
            path) else "qcow2")
    thread.join()
    assert not failures
    for offset, data in writes.items():
        assert disk.guest_read(path, offset, len(data)) == data
    assert disk_chain.collapse(path, fmt)
    for offset, data in writes.items():
        assert disk.guest_read(path, offset, len(data), fmt) == data


def test_own_chunks_are_the_chunks_the_top_layer_touches():
    extents = [
        {"start": 0, "length": 3 * MiB, "depth": 1, "present": True},
        {"start": 3 * MiB, "length": 2 * MiB, "depth": 0, "present": True},    # chunks 0, 1
        {"start": 5 * MiB, "length": 11 * MiB, "depth": 1, "present": False},
        {"start": 16 * MiB, "length": 4096, "depth": 0, "present": True},      # chunk 4
        {"start": 16 * MiB + 4096, "length": 8 * MiB - 4096, "depth": 2,
         "present": False},
    ]
    assert snapshot.own_chunks(extents, CHUNK) == [0, 1, 4]
    assert snapshot.own_chunks(extents, 1 * MiB) == [3, 4, 16]
    assert snapshot.own_chunks([e for e in extents if e["depth"]], CHUNK) == []


@pytest.mark.parametrize("freeze_first", [False, True])
def test_a_fold_that_died_after_its_rename_is_finished_by_the_next(root, freeze_first):
    path, fmt = root
    view = _two_rounds_written(path, fmt)
    # what a fold killed between its rename and deleting the other layers leaves
    disk._run([disk.QEMU_IMG, "commit", "-q", "-f", "qcow2", "-b", path + ".pre-1", path],
              "commit")
    os.replace(path + ".pre-1", path)
    assert disk_chain.frozen_layers(path) == [path + ".pre-2"]
    assert not disk_chain.chained(path)  # the disk reads as its own format again
    if freeze_first:  # the next move's freeze comes before any fold
        frozen, _ = disk_chain.freeze(path, fmt)
        assert frozen == path + ".pre-1"
        assert disk_chain.frozen_layers(path) == [frozen]
        assert _view(path) == view
    assert disk_chain.collapse(path, fmt) is True
    assert disk_chain.frozen_layers(path) == []
    assert disk.guest_read(path, 0, SIZE, fmt) == view
