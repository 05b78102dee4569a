"""What every move benchmark needs: a real cloud in its own process, and a client.

The cloud is a ``transcell up`` subprocess, so the benchmark's own work
(polling, writing guest data, copying reference files) does not share an
interpreter lock with the services it measures. The client talks HTTP, as a
user would; only where no API exists (the disk files, the saga's per-step
figures) does it read the cloud's state directory, the way the operator CLI
does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import yaml

MiB = 1024 * 1024
GiB = 1024 * MiB
COMPUTE = "/compute/v2.1"
MIGRATIONS_VERSION = "2.59"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with 20 samples p90 is the 18th, a value that occurred."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summary(values: list[float]) -> str:
    return (f"median {statistics.median(values):6.3f}s  p90 {percentile(values, 90):6.3f}s  "
            f"(n={len(values)}, min {min(values):.3f}s, max {max(values):.3f}s)")


def machine() -> str:
    """One line naming the hardware, since every figure here depends on it."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh
                          if line.startswith("model name")), model)
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    return f"{os.cpu_count()} x {model}, {mem:.0f} GiB RAM, Python {sys.version.split()[0]}"


def load_note() -> str:
    """The load average, because other work on a 2-core machine moves every figure here."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cloud:
    """A running ``transcell up`` and an admin client of it."""

    def __init__(self, state_dir: str, proc: subprocess.Popen, port: int) -> None:
        self.state_dir = state_dir
        self.proc = proc
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self._token: str | None = None
        #: 404s answered for a server that exists, while a move was flipping it between
        #: cells (see ``wait_status``); every benchmark prints the count.
        self.vanished = 0
        self.polls = 0

    # -- HTTP ------------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            with open(os.path.join(self.state_dir, "clouds.yaml")) as fh:
                auth = yaml.safe_load(fh)["clouds"]["transcell-admin"]["auth"]
            body = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": auth["username"], "password": auth["password"],
                    "domain": {"name": "Default"}}}},
                "scope": {"project": {"name": auth["project_name"],
                                      "domain": {"name": "Default"}}}}}
            resp = self.http.post(f"{self.base_url}/identity/v3/auth/tokens", json=body,
                                  timeout=30)
            resp.raise_for_status()
            self._token = resp.headers["X-Subject-Token"]
        return self._token

    def request(self, method: str, path: str, version: str | None = None,
                expect: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {}, **{"X-Auth-Token": self.token()})
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        resp = self.http.request(method, f"{self.base_url}{path}", headers=headers,
                                 timeout=kwargs.pop("timeout", 600), **kwargs)
        if resp.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp

    def server(self, server_id: str) -> dict:
        return self.request("GET", f"{COMPUTE}/servers/{server_id}",
                            version="2.53").json()["server"]

    def action(self, server_id: str, body: dict, expect: int = 202) -> None:
        self.request("POST", f"{COMPUTE}/servers/{server_id}/action", json=body,
                     expect=(expect,))

    def wait_status(self, server_id: str, status: str, timeout: float = 600,
                    poll: float = 0.02) -> dict:
        """Poll until ``status`` with no task running; ``poll`` bounds the timing error.

        A 404 for the server being waited on is counted, not fatal: the API reads
        the instance mapping and then the row, so a poll that lands between a
        move's mapping switch and its hiding of the old row is told the server
        does not exist. The benchmarks report how often that happened.
        """
        deadline = time.monotonic() + timeout
        found: dict = {}
        while time.monotonic() < deadline:
            resp = self.request("GET", f"{COMPUTE}/servers/{server_id}", version="2.53",
                                expect=(200, 404))
            self.polls += 1
            if resp.status_code == 404:
                self.vanished += 1
                time.sleep(poll)
                continue
            found = resp.json()["server"]
            if found["status"] == status and found["OS-EXT-STS:task_state"] is None:
                return found
            if found["status"] == "ERROR":
                raise RuntimeError(f"server {server_id} went to ERROR: {found.get('fault')}")
            time.sleep(poll)
        raise RuntimeError(f"server {server_id} is {found.get('status')}, not {status}")

    def wait_gone(self, server_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request("GET", f"{COMPUTE}/servers/{server_id}",
                            expect=(200, 404)).status_code == 404:
                return
            time.sleep(0.1)
        raise RuntimeError(f"server {server_id} was not deleted")

    # -- resources ---------------------------------------------------------------------------
    def default_image(self) -> str:
        return self.request("GET", "/image/v2/images?name=transcell-base").json()[
            "images"][0]["id"]

    def network(self) -> str:
        return self.request("GET", "/network/v2.0/networks?name=private").json()[
            "networks"][0]["id"]

    def flavor_id(self, name: str) -> str:
        for flavor in self.request("GET", f"{COMPUTE}/flavors").json()["flavors"]:
            if flavor["name"] == name:
                return flavor["id"]
        raise RuntimeError(f"no flavor {name}")

    def create_flavor(self, name: str, disk_gb: int, trait: str | None) -> str:
        """A flavor of ``disk_gb`` root disk, pinned to a hardware generation by ``trait``."""
        body = {"flavor": {"name": name, "ram": 512, "vcpus": 1, "disk": disk_gb}}
        flavor_id = self.request("POST", f"{COMPUTE}/flavors", json=body).json()["flavor"]["id"]
        if trait:
            self.request("POST", f"{COMPUTE}/flavors/{flavor_id}/os-extra_specs",
                         json={"extra_specs": {f"trait:{trait}": "required"}})
        return flavor_id

    def boot(self, name: str, flavor_id: str, image_id: str | None = None) -> dict:
        body = {"server": {"name": name, "flavorRef": flavor_id,
                           "imageRef": image_id or self.default_image(),
                           "networks": [{"uuid": self.network()}]}}
        server_id = self.request("POST", f"{COMPUTE}/servers", json=body,
                                 expect=(202,)).json()["server"]["id"]
        return self.wait_status(server_id, "ACTIVE", poll=0.05)

    def delete(self, server_id: str) -> None:
        self.request("DELETE", f"{COMPUTE}/servers/{server_id}", expect=(204,))
        self.wait_gone(server_id)

    # -- behind the API: what the operator CLI reads ----------------------------------------
    def migration_uuid(self, server_id: str) -> str:
        """The newest migration's uuid: os-migrations at 2.59, else the saga record."""
        resp = self.request("GET", f"{COMPUTE}/os-migrations?instance_uuid={server_id}",
                            version=MIGRATIONS_VERSION, expect=(200, 400, 404, 406))
        if resp.status_code == 200 and resp.json()["migrations"]:
            return resp.json()["migrations"][0]["uuid"]
        from transcell.move.saga import Saga
        saga = Saga.latest_for(server_id)
        if saga is None:
            raise RuntimeError(f"server {server_id} has no migration")
        return saga.uuid

    def wait_move_ended(self, migration_uuid: str, timeout: float = 60) -> None:
        """Until the conductor has finished a confirm or revert, not only the API's status.

        The server reads ACTIVE a moment before the conductor lets go of it: a
        resize sent in that moment is accepted by the API and then refused by
        the conductor, which leaves the server in RESIZE for good. So a
        benchmark that moves the same server again waits for the saga's final
        status, then a little more; this wait is never part of a timing.
        """
        from transcell.move.saga import Saga
        deadline = time.monotonic() + timeout
        while Saga.load(migration_uuid).status not in ("confirmed", "reverted"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"move {migration_uuid} did not end")
            time.sleep(0.02)
        time.sleep(0.1)

    def timed_resize(self, server_id: str, flavor: str, poll: float = 0.02
                     ) -> tuple[float, dict]:
        """Seconds from a resize request to VERIFY_RESIZE as polling every ``poll``
        seconds saw it, and the move's report, whose ``span`` is the same from the
        request to the conductor's ``moved_at`` (one machine, one clock: no poll);
        then confirmed, and waited for until it has ended (untimed)."""
        os.sync()  # earlier writeback is not the move's cost
        sent_at = time.time()
        started = time.monotonic()
        self.action(server_id, {"resize": {"flavorRef": flavor}})
        self.wait_status(server_id, "VERIFY_RESIZE", poll=poll)
        seconds = time.monotonic() - started
        migration = self.migration_uuid(server_id)
        report = self.migration_show(migration)
        report["span"] = (report["moved_at"] - sent_at) if report.get("moved_at") else None
        self.action(server_id, {"confirmResize": None}, 204)
        self.wait_status(server_id, "ACTIVE")
        self.wait_move_ended(migration)
        return seconds, report

    def migration_show(self, migration_uuid: str) -> dict:
        """``transcell migration show --json``, plus the host-side timings the saga keeps."""
        from transcell.move.report import show
        from transcell.move.saga import Saga
        report = show(migration_uuid)
        res = Saga.load(migration_uuid).resources
        report["host_seconds"] = {key: res.get(f"{key}_seconds") for key in (
            "flatten", "upload", "download", "verify")}
        report["moved_at"] = res.get("moved_at")  # the conductor's wall clock, at MOVED
        return report

    def root_disk(self, server_id: str, host: str) -> tuple[str, str]:
        """Path and format of the server's root disk on ``host``."""
        from transcell.inspect import locate
        for found in locate(server_id)["disks"]:
            if found["host"] == host and os.path.basename(found["path"]) == "disk":
                path = found["path"]
                with open(os.path.join(os.path.dirname(path), "disk.json")) as fh:
                    return path, json.load(fh).get("format", "qcow2")
        raise RuntimeError(f"no root disk of {server_id} on {host}")


def _configure_reader(state_dir: str) -> None:
    """Point this process's configuration at the cloud's state, as the CLI does."""
    from transcell.conf import CONF
    CONF([], project="transcell",
         default_config_files=[os.path.join(state_dir, "transcell.conf")])
    CONF.set_override("state_dir", state_dir)


def scale_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark on a seeded state directory takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cells", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=20, help="timed requests per case")
    parser.add_argument("--state-dir", help="an already seeded state directory to use")
    parser.add_argument("--keep", action="store_true", help="keep the seeded state directory")
    return parser


def seed(state_dir: str, n_cells: int, n_hosts: int, n_servers: int,
         n_projects: int | None = None) -> float:
    """Fill ``state_dir`` with ``transcell dev seed`` (the bulk loader); its seconds."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "transcell.cli.main", "dev", "seed",
                    "--state-dir", state_dir, "--cells", str(n_cells), "--hosts",
                    str(n_hosts), "--servers", str(n_servers),
                    *(["--projects", str(n_projects)] if n_projects else [])],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def drop_state(state_dir: str, own: bool, keep: bool) -> None:
    """Remove a state directory this run seeded, unless asked to keep it (then say where)."""
    if own and not keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    elif own:
        print(f"state directory kept: {state_dir}")


def _debug() -> list[str]:
    """``TRANSCELL_BENCH_DEBUG=1`` logs the cloud at DEBUG into the state directory's
    ``up.log`` (with ``--keep``), where the hosts' data-path stage timings are."""
    return ["--debug"] if os.environ.get("TRANSCELL_BENCH_DEBUG") else []


@contextmanager
def running_cloud(cells: int = 2, hosts_per_cell: int = 1, disk_format: str | None = None,
                  keep: bool = False, distributed: bool = False,
                  env: dict[str, str] | None = None,
                  options: dict[str, dict[str, object]] | None = None) -> Iterator[Cloud]:
    """Start ``transcell up`` in a fresh state directory; stop it and remove the state after.

    The state directory sits on the same filesystem as the system's temporary
    directory, which is also where the reference copies are made. ``distributed``
    runs every service as its own process (``up --distributed``), whose databases
    and vhosts are purged at the end, however the run ends. ``env`` is added to the
    cloud's environment only, not the benchmark's; ``options`` ({group: {name:
    value}}) go into its configuration file.
    """
    state_dir = tempfile.mkdtemp(prefix="transcell-bench-")
    groups: dict[str, dict[str, object]] = {k: dict(v) for k, v in (options or {}).items()}
    if disk_format:
        groups.setdefault("compute", {})["disk_format"] = disk_format
    if groups:
        with open(os.path.join(state_dir, "transcell.conf"), "w") as fh:
            for group, values in groups.items():
                fh.write(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    port = _free_port()
    log = open(os.path.join(state_dir, "up.log"), "w")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "transcell.cli.main", "up", "--state-dir", state_dir,
         "--port", str(port), "--cells", str(cells), "--hosts-per-cell", str(hosts_per_cell),
         *(["--distributed"] if distributed else []), *_debug()],
        stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ, **(env or {})))
    try:
        deadline = time.monotonic() + (600 if distributed else 120)
        while True:
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() == "ready":
                break
            if not line and proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"transcell up did not start; see {state_dir}/up.log")
        _configure_reader(state_dir)
        yield Cloud(state_dir, proc, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if distributed:
            from transcell.db.session import dispose_all
            from transcell.deploy.launcher import purge
            dispose_all()  # this process's own connections (saga reads), before the drop
            purge(state_dir)
        if keep:
            print(f"(state kept in {state_dir})")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def timed_copy(source: str, runs: int = 3) -> float:
    """Median seconds of ``shutil.copyfile`` of ``source`` to a sibling file.

    The copy goes to the same filesystem the move writes to, and the file was
    just written, so both the copy and the move read it from the page cache.
    Neither syncs: the image store and the hosts do not fsync either, so the
    comparison is of the work each does, not of the disk's flush speed. Dirty
    pages left by earlier steps are flushed before each run (untimed), as they
    are before the move, so neither pays for the other's writeback.
    """
    times = []
    dest = source + ".bench-copy"
    for _ in range(runs):
        os.sync()
        started = time.monotonic()
        shutil.copyfile(source, dest)
        times.append(time.monotonic() - started)
        os.unlink(dest)
    return statistics.median(times)


def steps_line(report: dict) -> str:
    steps = report["phases_seconds"]
    hosts = {k: v for k, v in report["host_seconds"].items() if v is not None}
    return (", ".join(f"{name} {seconds:.2f}s" for name, seconds in steps.items())
            + "\n      host work: " + ", ".join(f"{k} {v:.2f}s" for k, v in hosts.items()))
