"""State files are private: 0700 directories and 0600 files whatever the umask.

The first test runs a real ``transcell up`` on a state directory prepared the
way an attacker or an old version would leave it (umask 022, a world-readable
directory, a stale world-readable ``clouds.yaml.tmp``, symlinks at the old
fixed temp names). The others create the same files in this process under
umask 022, so they show the code does not rely on the umask ``transcell``
sets for itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import stat
import uuid

import pytest
import yaml
from cloudclients import CloudProcess, start_cloud, stop_cloud

from transcell import statefiles

COMPUTE = "/compute/v2.1"


def _mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _exposed(root: str, skip: set[str]) -> list[str]:
    """Every file or directory under ``root`` that group or others can read or enter."""
    found = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            if path in skip or os.path.islink(path):
                continue
            if _mode(path) & 0o077:
                found.append(f"{oct(_mode(path))} {os.path.relpath(path, root)}")
    return found


def test_a_cloud_keeps_its_state_private_whatever_the_umask(tmp_path):
    state_dir = str(tmp_path / "state")
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    os.chmod(victim, 0o644)
    with _umask(0o022):
        os.makedirs(state_dir, mode=0o755)
        stale = os.path.join(state_dir, "clouds.yaml.tmp")
        with open(stale, "w") as fh:
            fh.write("stale: true\n")
        os.chmod(stale, 0o644)
        os.symlink(victim, os.path.join(state_dir, "transcell.conf.tmp"))
        proc = start_cloud(state_dir, ("--cells", "2", "--hosts-per-cell", "1"))
    try:
        cloud = CloudProcess(state_dir, proc.port)
        image = cloud.request("GET", "/image/v2/images?name=transcell-base").json()["images"][0]
        net = cloud.request("GET", "/network/v2.0/networks?name=private").json()["networks"][0]
        resp = cloud.request("POST", f"{COMPUTE}/servers", cloud="transcell-demo", json={
            "server": {"name": "private-disk", "flavorRef": "1", "imageRef": image["id"],
                       "networks": [{"uuid": net["id"]}]}})
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        cloud.wait_status(server_id, "ACTIVE", cloud="transcell-demo")
        report = json.loads(cloud.transcell("instance", "locate", server_id, "--json").stdout)

        assert _mode(state_dir) == 0o700
        clouds = os.path.join(state_dir, "clouds.yaml")
        assert stat.S_ISREG(os.lstat(clouds).st_mode) and _mode(clouds) == 0o600
        with open(clouds) as fh:
            assert "transcell-admin" in yaml.safe_load(fh)["clouds"]
        conf = os.path.join(state_dir, "transcell.conf")
        assert stat.S_ISREG(os.lstat(conf).st_mode) and _mode(conf) == 0o600
        assert victim.read_text() == "untouched\n", "a write followed the planted symlink"
        for name in ("api.sqlite", "cell0.sqlite", "cell1.sqlite", "cell2.sqlite",
                     "network.sqlite", "image.sqlite", "placement.sqlite", "identity.json"):
            assert _mode(os.path.join(state_dir, name)) == 0o600, name
        chunks = [os.path.join(d, f) for d, _, fs in
                  os.walk(os.path.join(state_dir, "images", "chunks")) for f in fs]
        assert chunks and all(_mode(c) == 0o600 for c in chunks)
        disks = [d["path"] for d in report["disks"]]
        assert disks, report
        for path in disks:
            assert _mode(path) == 0o600, path
            assert _mode(os.path.dirname(path)) == 0o700

        # and nothing else under the state directory is exposed either
        planted = {stale, *(os.path.join(state_dir, n) for n in os.listdir(state_dir)
                            if n.startswith("up-") and n.endswith(".log"))}
        assert _exposed(state_dir, planted) == []
    finally:
        stop_cloud(proc)


def test_write_atomic_makes_a_fresh_private_file_and_never_follows_links(tmp_path):
    target = tmp_path / "secret.yaml"
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    with _umask(0o022):
        statefiles.write_atomic(str(target), "password: one\n")
        assert _mode(str(target)) == 0o600
        # a world-readable file already there is replaced, not rewritten in place
        os.chmod(target, 0o644)
        statefiles.write_atomic(str(target), "password: two\n")
        assert _mode(str(target)) == 0o600 and target.read_text() == "password: two\n"
        # a symlink at the destination is replaced; its target is left alone
        target.unlink()
        target.symlink_to(victim)
        statefiles.write_atomic(str(target), b"password: three\n")
        assert not target.is_symlink() and _mode(str(target)) == 0o600
        assert victim.read_text() == "untouched"
        # a caller-chosen temp name that is taken (a planted link or stale file) is refused
        planted = tmp_path / ".secret.yaml.part"
        planted.symlink_to(victim)
        with pytest.raises(FileExistsError):
            statefiles.write_atomic(str(target), "x", tmp_path=str(planted))
        assert victim.read_text() == "untouched"
        assert target.read_text() == "password: three\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            ".secret.yaml.part", "secret.yaml", "victim"]


def test_private_dir_creates_every_missing_level_0700_and_tightens_its_own(tmp_path):
    parent_mode = _mode(str(tmp_path))
    with _umask(0o022):
        deep = statefiles.private_dir(str(tmp_path / "a" / "b" / "c"))
        for level in ("a", "a/b", "a/b/c"):
            assert _mode(str(tmp_path / level)) == 0o700, level
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o755)
        statefiles.private_dir(str(loose))
        assert _mode(str(loose)) == 0o700
        assert _mode(str(tmp_path)) == parent_mode  # existing parents may be shared: untouched
        assert os.path.isdir(deep)


def test_stores_databases_and_disks_are_private_under_umask_022(tmp_path):
    from transcell.compute.virt.fake import FakeDriver
    from transcell.db.session import get_engine
    from transcell.identity import store as id_store
    from transcell.image.store import ChunkStore

    with _umask(0o022):
        store = ChunkStore(str(tmp_path / "images"), 4096)
        digest = store.put(b"guest bytes" * 100)
        assert _mode(store.chunk_path(digest)) == 0o600
        assert _mode(os.path.dirname(store.chunk_path(digest))) == 0o700
        assert _mode(store.chunk_dir) == 0o700 and _mode(store.root) == 0o700

        db = tmp_path / "cell9.sqlite"
        engine = get_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{db}{suffix}"):
                    assert _mode(f"{db}{suffix}") == 0o600, suffix
        engine.dispose()

        id_store.bootstrap(str(tmp_path / "identity"))
        assert _mode(str(tmp_path / "identity")) == 0o700
        assert _mode(str(tmp_path / "identity" / id_store.FILE_NAME)) == 0o600

        if shutil.which("qemu-img") is None:
            pytest.skip("qemu-img is needed for real disks")
        driver = FakeDriver("host9", str(tmp_path / "hosts" / "host9" / "instances"),
                            str(tmp_path / "hosts" / "host9" / "image-cache"))
        driver.init_host()
        image = random.Random(3).randbytes(1024 * 1024)

        def fetch(_image_id: str, dest: str) -> None:
            with open(dest, "wb") as fh:  # 0644 under this umask, as a careless fetcher would
                fh.write(image)

        inst = {"uuid": str(uuid.uuid4()), "display_name": "vm", "vcpus": 1,
                "memory_mb": 512}
        driver.spawn(inst, {"id": str(uuid.uuid4()), "disk_format": "raw"}, fetch, disk_gb=1)
        root = driver.root_disk_path(inst["uuid"])
        assert _mode(root) == 0o600
        assert _mode(os.path.dirname(root)) == 0o700
        assert _exposed(str(tmp_path / "hosts"), set()) == []
