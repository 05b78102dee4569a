"""The in-process qcow2 table reader against ``qemu-img map`` on images qemu wrote.

The reader stands in for qemu-img only in the pre-copy estimate, so what
matters is that it names the same chunks as the map it replaces, and that
any file it does not understand sends the caller back to qemu-img.
"""

from __future__ import annotations

import random
import subprocess

import pytest

from transcell.compute import snapshot
from transcell.compute.virt import disk
from transcell.compute.virt.qcow2_meta import own_extents

KiB = 1024
MiB = 1024 * KiB
SIZE = 24 * MiB + 3 * 512  # not a multiple of any cluster size used here
CHUNKS = (4 * KiB, 64 * KiB, MiB, 7 * 64 * KiB + 512)


def _img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def _io(path: str, commands: list[str], fmt: str = "qcow2") -> None:
    argv = ["qemu-io", "-f", fmt]
    for command in commands:
        argv += ["-c", command]
    subprocess.run([*argv, path], check=True, capture_output=True)


def _qcow2(tmp_path, name: str, cluster: int, backing: bool, size: int = SIZE,
           extra: str = "") -> str:
    path = str(tmp_path / name)
    options = f"cluster_size={cluster}" + (f",{extra}" if extra else "")
    if backing:
        base = str(tmp_path / f"{name}.base")
        _img("create", "-q", "-f", "qcow2", base, str(size))
        _io(base, ["write -P 0x11 0 1M", f"write -P 0x22 {size - 64 * KiB} 64k"])
        _img("create", "-q", "-f", "qcow2", "-o", options, "-b", base, "-F", "qcow2",
             path, str(size))
    else:
        _img("create", "-q", "-f", "qcow2", "-o", options, path, str(size))
    return path


def _random_commands(rng: random.Random, size: int, count: int) -> list[str]:
    commands = []
    for _ in range(count):
        offset = rng.randrange(0, size // 512) * 512
        length = min(rng.choice((512, 4 * KiB, 60 * KiB, 128 * KiB, 700 * KiB)),
                     size - offset)
        kind = rng.random()
        if kind < 0.6:
            commands.append(f"write -P 0x5a {offset} {length}")
        elif kind < 0.8:
            commands.append(f"write -z {offset} {length}")
        else:
            commands.append(f"discard {offset} {length}")
    # the last, partial cluster: clipping to the virtual size must hold
    commands.append(f"write -P 0x5a {size - 512} 512")
    return commands


def _map_own(path: str) -> list[dict]:
    return [e for e in disk.allocation_map(path, "qcow2") if e["depth"] == 0]


def _covered(extents: list[dict]) -> list[tuple[int, int]]:
    """Own byte ranges, merged, so the reader's runs compare with qemu's split ones."""
    merged: list[list[int]] = []
    for e in sorted(extents, key=lambda e: e["start"]):
        if e["depth"] != 0 or not e.get("present", True) or not e["length"]:
            continue
        if merged and merged[-1][1] == e["start"]:
            merged[-1][1] += e["length"]
        else:
            merged.append([e["start"], e["start"] + e["length"]])
    return [(a, b) for a, b in merged]


def _assert_same_as_map(path: str) -> list[dict]:
    mine = own_extents(path)
    assert mine is not None
    theirs = _map_own(path)
    assert _covered(mine) == _covered(theirs)
    for chunk in CHUNKS:
        assert snapshot.own_chunks(mine, chunk) == snapshot.own_chunks(theirs, chunk), chunk
    assert all(e["depth"] == 0 and e["present"] for e in mine)
    return mine


@pytest.mark.parametrize("backing", [False, True], ids=["alone", "overlay"])
@pytest.mark.parametrize("cluster", [64 * KiB, 4 * KiB], ids=["64k", "4k"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_qemu_img_map_after_random_writes(tmp_path, backing, cluster, seed):
    path = _qcow2(tmp_path, "disk.qcow2", cluster, backing)
    rng = random.Random(seed * 1000 + cluster + backing)
    _io(path, _random_commands(rng, SIZE, 40))
    mine = _assert_same_as_map(path)
    assert mine and mine[-1]["start"] + mine[-1]["length"] == SIZE


@pytest.mark.parametrize("backing", [False, True], ids=["alone", "overlay"])
def test_untouched_image_has_no_own_extents(tmp_path, backing):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing)
    assert own_extents(path) == []
    assert snapshot.own_chunks(_map_own(path), MiB) == []


def test_zero_and_discard_over_backing_stay_own(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=True)
    _io(path, ["write -z 0 128k", "discard 2M 64k"])
    assert _covered(_assert_same_as_map(path)) == [(0, 128 * KiB), (2 * MiB, 2 * MiB + 64 * KiB)]


def test_compressed_clusters_are_own(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=False)
    _io(path, ["write -c -P 0x33 1M 64k", "write -c -P 0x44 3M 128k"])
    _assert_same_as_map(path)


def test_version_2_image(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=True, extra="compat=0.10")
    _io(path, ["write -P 0x5a 5M 300k", f"write -P 0x5a {SIZE - 4096} 4k"])
    _assert_same_as_map(path)


def test_image_spanning_several_l2_tables(tmp_path):
    # 4k clusters: one L2 table covers 2 MiB, so 24 MiB needs a dozen
    path = _qcow2(tmp_path, "disk.qcow2", 4 * KiB, backing=True)
    _io(path, [f"write -P 0x5a {n * 2 * MiB - 4096} 8k" for n in range(1, 12)])
    _assert_same_as_map(path)


def test_extended_l2_is_left_to_qemu(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=True, extra="extended_l2=on")
    _io(path, ["write -P 0x5a 1M 4k"])
    assert own_extents(path) is None


def test_raw_file_is_left_to_qemu(tmp_path):
    path = str(tmp_path / "disk.raw")
    _img("create", "-q", "-f", "raw", path, "4M")
    assert own_extents(path) is None


def test_corrupt_bit_is_left_to_qemu(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=False)
    _io(path, ["write -P 0x5a 1M 4k"])
    with open(path, "r+b") as fh:
        fh.seek(72)
        flags = int.from_bytes(fh.read(8), "big") | 2
        fh.seek(72)
        fh.write(flags.to_bytes(8, "big"))
    assert own_extents(path) is None


def test_truncated_or_garbage_files_do_not_raise(tmp_path):
    path = _qcow2(tmp_path, "disk.qcow2", 64 * KiB, backing=False)
    _io(path, ["write -P 0x5a 1M 64k", "write -P 0x5a 9M 64k"])
    whole = open(path, "rb").read()
    cases = {
        "empty": b"",
        "magic only": whole[:4],
        "header only": whole[:104],
        "no l2": whole[:3 * 64 * KiB],
        "garbage": random.Random(7).randbytes(256 * KiB),
        "magic then garbage": whole[:8] + random.Random(8).randbytes(256 * KiB),
    }
    for name, content in cases.items():
        broken = tmp_path / name.replace(" ", "_")
        broken.write_bytes(content)
        assert own_extents(str(broken)) is None, name
    assert own_extents(str(tmp_path / "missing")) is None
