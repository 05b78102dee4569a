"""``transcell up --distributed``: every service its own process on this machine.

Same contract as the embedded ``transcell up``: ``STATE/clouds.yaml`` with the
five clouds, ``STATE/transcell.conf`` for the operator commands, ``ready`` on
stdout, a run until SIGINT/SIGTERM, and a restart on the same state directory
keeps everything. Underneath, it provisions databases (PostgreSQL and MariaDB,
one user per database), RabbitMQ vhosts (one user per vhost), a real Keystone,
and starts Placement, the API, the scheduler, two super-conductors, a conductor
per cell and a process per compute host, each with a config file naming only
what it may reach. A service process that dies is started again, as a service
manager would; ``STATE/run/NAME.pid`` says which process each service is now.
With ``--netns`` each cell's hosts run in that cell's network namespace and
reach the allowed endpoints only through that cell's relay.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import yaml

from transcell import statefiles
from transcell.conf import CONF
from transcell.deploy import layout as lay

LOG = logging.getLogger(__name__)

READY_TIMEOUT = 180.0
HOST = "127.0.0.1"
#: Sections of the operator's transcell.conf handed to every service as they are
#: (policy, quotas, conductor tuning...); the launcher owns the others.
MANAGED = {"api_database", "network", "placement", "rpc", "cell", "keystone_authtoken",
           "service_auth", "identity", "api", "image", "embedded"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Child:
    """One service process, restarted when it dies unless the launcher is stopping."""

    name: str
    argv: list[str]
    state_dir: str
    prefix: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    _log_offset: int = 0

    @property
    def log_path(self) -> str:
        return os.path.join(self.state_dir, "logs", f"{self.name}.log")

    @property
    def pid_path(self) -> str:
        return os.path.join(self.state_dir, "run", f"{self.name}.pid")

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        statefiles.private_dir(os.path.dirname(self.pid_path))
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self._log_offset = log.tell()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([*self.prefix, *self.argv], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True,
                                     preexec_fn=_die_with_launcher)
        log.close()
        statefiles.write_atomic(self.pid_path, f"{self.proc.pid}\n")

    def ready(self) -> bool:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return b"\nready\n" in b"\n" + fh.read()
        except FileNotFoundError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, size: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(self._log_offset, os.path.getsize(self.log_path) - size))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def terminate(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _die_with_launcher() -> None:
    """In the child, before exec: be killed when the launcher dies, however it dies.

    A launcher killed with SIGKILL cannot stop its services; without this they
    would outlive it and a restart would start a second set beside them. (The
    signal follows the thread that started the child: the main thread or the
    supervisor, both of which live as long as the launcher.)
    """
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def wait_ready(children: list[Child], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = list(children)
    while pending:
        for child in list(pending):
            if child.ready():
                pending.remove(child)
            elif not child.alive():
                raise RuntimeError(f"{child.name} exited before it was ready:\n{child.tail()}")
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{pending[0].name} was not ready in {timeout:.0f}s:\n"
                               f"{pending[0].tail()}")
        time.sleep(0.1)


class Launcher:
    def __init__(self, state_dir: str, port: int, netns: bool = False):
        self.state_dir = os.path.abspath(state_dir)
        self.port = port
        self.netns = netns
        self.children: list[Child] = []
        self.namespaces: dict[str, object] = {}
        self.relays: list = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- provisioning ---------------------------------------------------------
    @property
    def public(self) -> str:
        return f"http://{HOST}:{self.port}"

    def provision(self) -> None:
        from transcell.deploy import databases, rabbit
        statefiles.private_dir(self.state_dir)
        self.layout = lay.load_or_create(self.state_dir, CONF.embedded.cells,
                                         CONF.embedded.hosts_per_cell)
        CONF.set_override("cells", self.layout.cells, group="embedded")
        CONF.set_override("hosts_per_cell", self.layout.hosts_per_cell, group="embedded")
        lo = self.layout
        self.db_urls = {
            role: databases.ensure_database(lo.engine(role), lo.db_name(role), lo.db_user(role),
                                            lo.password(f"db:{role}"))
            for role in lo.databases}
        self.bus_urls = {
            bus: rabbit.ensure_vhost(lo.vhost(bus), lo.rabbit_user(bus),
                                     lo.password(f"rabbit:{bus}"))
            for bus in lo.buses}
        lay.save(self.state_dir, lo)
        self.keystone_port = free_port()
        self.placement_port = free_port()
        if self.netns:
            self._start_relays()

    def setup_keystone(self) -> None:
        from transcell.deploy import keystone
        ks_dir = os.path.join(self.state_dir, "keystone")
        conf_file = keystone.write_config(ks_dir, self.db_urls["keystone"],
                                          public_endpoint=f"{self.public}/identity")
        self.passwords = keystone.ensure_passwords(ks_dir)
        # the internal endpoint is Keystone itself, so the APIs' token checks do not
        # go through the API's own /identity pass-through
        keystone.prepare(conf_file, self.passwords, f"{self.public}/identity",
                         internal_url=self.keystone_url, region=CONF.region_name)
        child = Child("keystone", keystone.serve_command(conf_file, self.keystone_port),
                      self.state_dir)
        child.start()
        self.children.append(child)
        keystone.wait_until_up(self.keystone_url, process=child.proc)
        self.authtoken = keystone.authtoken_conf(self.keystone_url, self.passwords,
                                                 www_authenticate_uri=f"{self.public}/identity")
        clouds = keystone.clouds_yaml(f"{self.public}/identity", self.passwords,
                                      region=CONF.region_name)
        statefiles.write_atomic(os.path.join(self.state_dir, "clouds.yaml"),
                                yaml.safe_dump(clouds, default_flow_style=False))

    def populate_keystone(self) -> None:
        """Users, projects and the catalog; through the catalog's identity endpoint, so
        only once the API (which passes /identity through) answers."""
        from transcell.deploy import keystone
        keystone.populate(self.keystone_url, self.passwords,
                          endpoints=keystone.service_endpoints(self.public))

    @property
    def keystone_url(self) -> str:
        return f"http://{HOST}:{self.keystone_port}/identity/v3"

    def sync_databases(self) -> None:
        """``transcell db sync`` for the whole layout, in this process."""
        from transcell import bootstrap
        from transcell.placement import schema
        for key, value in self._api_tier_overrides().items():
            group, name = key.split(".")
            CONF.set_override(name, value, group=group)
        bootstrap.sync_distributed(
            cells={name: (self.layout.cell_uuids[name], self.db_urls[name],
                          self.bus_urls[name]) for name in self.layout.cell_names},
            cell0_url=self.db_urls["cell0"], api_bus_url=self.bus_urls["api"])
        schema.sync(self.db_urls["placement"])

    def _api_tier_overrides(self) -> dict[str, str]:
        return {"api_database.connection": self.db_urls["api"],
                "network.database_connection": self.db_urls["network"],
                "volume.database_connection": self.db_urls["volume"],
                "image.database_connection": self.db_urls["image"],
                "placement.database_connection": self.db_urls["placement"]}

    # -- configuration files -----------------------------------------------------
    def _operator_sections(self) -> dict[str, dict[str, object]]:
        import configparser
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read(os.path.join(self.state_dir, "transcell.conf"))
        sections: dict[str, dict[str, object]] = {
            "DEFAULT": {k: v for k, v in parser.defaults().items()
                        if k not in ("state_dir", "bind_host", "bind_port", "host")}}
        for section in parser.sections():
            if section not in MANAGED:
                sections[section] = {k: v for k, v in parser.items(section, raw=True)
                                     if k not in parser.defaults()}
        return sections

    def _service_auth(self, auth_url: str) -> dict[str, object]:
        return {"auth_type": "password", "auth_url": auth_url, "username": "transcell",
                "password": self.passwords["transcell"], "project_name": "service",
                "user_domain_name": "Default", "project_domain_name": "Default"}

    def _base(self, host: str = HOST) -> dict[str, dict[str, object]]:
        """What every service shares; ``host`` is where it reaches the others."""
        sections = self._operator_sections()
        sections["DEFAULT"].update({"state_dir": self.state_dir})
        sections["identity"] = {"auth_strategy": "keystone"}
        ks = f"http://{host}:{self.keystone_port}/identity/v3"
        sections["service_auth"] = self._service_auth(ks)
        sections["placement"] = {"url": f"http://{host}:{self.placement_port}"}
        sections["image"] = {"api_url": f"http://{host}:{self.port}/image"}
        sections["network"] = {"api_url": f"http://{host}:{self.port}/network"}
        # [volume] is the operator's (backends, types, data_dir) but for where the
        # service is; its database is the API tier's alone, never in a cell's file
        sections.setdefault("volume", {}).pop("database_connection", None)
        sections["volume"]["api_url"] = f"http://{host}:{self.port}/volume"
        sections["embedded"] = {"cells": self.layout.cells,
                                "hosts_per_cell": self.layout.hosts_per_cell}
        return sections

    def _api_tier(self) -> dict[str, dict[str, object]]:
        sections = self._base()
        sections["api_database"] = {"connection": self.db_urls["api"]}
        sections["network"]["database_connection"] = self.db_urls["network"]
        sections["volume"]["database_connection"] = self.db_urls["volume"]
        sections["image"]["database_connection"] = self.db_urls["image"]
        sections["placement"]["database_connection"] = self.db_urls["placement"]
        sections["rpc"] = {"transport_url": self.bus_urls["api"]}
        return sections

    def write_configs(self) -> dict[str, str]:
        etc = statefiles.private_dir(os.path.join(self.state_dir, "etc"))
        files: dict[str, str] = {}
        api = self._api_tier()
        api["DEFAULT"].update({"bind_host": HOST, "bind_port": self.port,
                               "public_endpoint": self.public})
        api["keystone_authtoken"] = dict(self.authtoken)
        api["api"] = {"identity_backend": f"http://{HOST}:{self.keystone_port}",
                      "placement_backend": f"http://{HOST}:{self.placement_port}"}
        files["api"] = lay.write_config(os.path.join(etc, "api.conf"), api)
        files["control"] = lay.write_config(os.path.join(etc, "control.conf"),
                                            self._api_tier())
        placement = self._base()
        placement["placement"].update({"database_connection": self.db_urls["placement"],
                                       "bind_host": HOST, "bind_port": self.placement_port})
        placement["keystone_authtoken"] = {**self.authtoken, "username": "placement",
                                           "password": self.passwords["placement"]}
        files["placement"] = lay.write_config(os.path.join(etc, "placement.conf"), placement)
        for name in self.layout.cell_names:
            reach = self._cell_host(name)
            cell = self._base(reach)
            cell["cell"] = {"name": name, "uuid": self.layout.cell_uuids[name],
                            "database_connection": self._via(self.db_urls[name], name),
                            "transport_url": self._via(self.bus_urls[name], name)}
            # nothing of the API tier: a host that tried would fail loudly
            cell["api_database"] = {"connection": "sqlite:////nonexistent/api-tier-only"}
            cell["rpc"] = {"transport_url": "inproc://no-api-bus-in-a-cell"}
            files[name] = lay.write_config(os.path.join(etc, f"{name}.conf"), cell)
        operator = self._api_tier()
        operator["DEFAULT"].update({"bind_host": HOST, "bind_port": self.port})
        statefiles.write_atomic(os.path.join(self.state_dir, "transcell.conf"),
                                lay.render(operator))
        return files

    def _cell_host(self, cell: str) -> str:
        if not self.netns:
            return HOST
        return self.namespaces[cell].host_address

    def _via(self, url: str, cell: str) -> str:
        """A URL as the cell's hosts reach it: through their relay with --netns."""
        return self.namespaces[cell].url(url) if self.netns else url

    # -- processes --------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "transcell.cli.main", *args]

    def start_services(self, files: dict[str, str]) -> None:
        plan = [Child("placement", self._cmd("placement", "--config-file", files["placement"]),
                      self.state_dir),
                Child("api", self._cmd("api", "--config-file", files["api"],
                                       "--host", "api"), self.state_dir),
                Child("scheduler", self._cmd("scheduler", "--config-file", files["control"],
                                             "--host", "scheduler"), self.state_dir)]
        for n in (1, 2):
            plan.append(Child(f"conductor-{n}", self._cmd(
                "conductor", "--config-file", files["control"], "--host", f"conductor-{n}"),
                self.state_dir))
        for name in self.layout.cell_names:
            prefix = self.namespaces[name].exec_prefix() if self.netns else []
            plan.append(Child(f"conductor-{name}", self._cmd(
                "conductor", "--cell", name, "--config-file", files[name]), self.state_dir,
                prefix=prefix))
            for host in self.layout.hosts(name):
                plan.append(Child(f"compute-{host}", self._cmd(
                    "compute", "--host", host, "--config-file", files[name]),
                    self.state_dir, prefix=prefix))
        # Placement and the API first: the others register with and fetch from them.
        for child in plan[:2]:
            child.start()
        self.children.extend(plan[:2])
        wait_ready(plan[:2])
        self.populate_keystone()
        for child in plan[2:]:
            child.start()
        self.children.extend(plan[2:])
        wait_ready(plan[2:])

    def _start_relays(self) -> None:
        from transcell.deploy import netns
        for index, name in enumerate(self.layout.cell_names, start=1):
            space = netns.CellNamespace(self.layout.prefix, name, index)
            space.create()
            self.namespaces[name] = space
            db_port = lay.DB_PORTS[self.layout.engine(name)]
            # the allow-list of this cell: its own database server, the broker (where
            # only its own vhost admits its credentials), and the HTTP services
            targets = {port: (HOST, port) for port in (
                db_port, lay.RABBIT_PORT, self.keystone_port, self.placement_port,
                self.port)}
            os.makedirs(os.path.join(self.state_dir, "logs"), exist_ok=True)
            self.relays.append(space.start_relay(
                targets, log_path=os.path.join(self.state_dir, "logs", f"relay-{name}.log")))

    def supervise(self) -> None:
        def loop() -> None:
            while not self._stopping.wait(0.5):
                for relay in self.relays:
                    if not relay.alive() and not self._stopping.is_set():
                        LOG.warning("a relay exited; starting it again")
                        relay.start()
                for child in self.children:
                    if child.proc is not None and not child.alive() \
                            and not self._stopping.is_set():
                        LOG.warning("%s exited (%s); starting it again", child.name,
                                    child.proc.returncode)
                        child.restarts += 1
                        time.sleep(min(5.0, 0.5 * child.restarts))
                        if not self._stopping.is_set():
                            child.start()

        self._supervisor = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        # the API first, so nothing new is accepted into services that are stopping
        order = sorted(self.children, key=lambda c: 0 if c.name == "api" else
                       (2 if c.name == "keystone" else 1))
        for child in order:
            child.terminate()
        deadline = time.monotonic() + CONF.wsgi.shutdown_timeout + 5
        for child in order:
            while child.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            child.kill()
        for relay in self.relays:
            relay.stop()
        if self.netns:
            from transcell.deploy import netns
            for space in self.namespaces.values():
                space.destroy()
            netns.cleanup(self.layout.prefix)


def run_distributed(state_dir: str, port: int, netns: bool = False) -> int:
    from transcell.wsgi.server import raise_fd_limit
    raise_fd_limit()
    from transcell.lifecycle import StopSignals, serve_until_stopped
    # caught from the start: a signal during the long start-up stops what started
    signals = StopSignals()
    launcher = Launcher(state_dir, port, netns=netns)
    try:
        launcher.provision()
        launcher.setup_keystone()
        launcher.sync_databases()
        files = launcher.write_configs()
        launcher.start_services(files)
    except BaseException:
        launcher.stop()
        raise
    launcher.supervise()
    # the children get their own grace each, one after another at worst
    return serve_until_stopped(
        f"transcell: {launcher.public} (state {launcher.state_dir}, distributed)",
        launcher.stop, signals, grace=3 * (CONF.wsgi.shutdown_timeout + 5) + 15)


def purge(state_dir: str) -> None:
    """Drop everything a deployment made outside its state directory.

    For tests and for an operator who is done with a throw-away cloud: its
    databases and their users, its vhosts and broker users, its namespaces.
    """
    import json

    from transcell.deploy import databases, netns, rabbit
    path = os.path.join(state_dir, lay.LAYOUT_NAME)
    if not os.path.exists(path):
        return
    with open(path) as fh:
        layout = lay.Layout(**json.load(fh))
    for role in layout.databases:
        try:
            databases.drop_database(layout.engine(role), layout.db_name(role),
                                    layout.db_user(role))
        except Exception:
            LOG.exception("could not drop database %s", layout.db_name(role))
    for bus in layout.buses:
        for remove, name in ((rabbit.delete_vhost, layout.vhost(bus)),
                             (rabbit.delete_user, layout.rabbit_user(bus))):
            try:
                remove(name)
            except Exception:
                LOG.exception("could not remove %s", name)
    try:
        netns.cleanup(layout.prefix)
    except Exception:
        LOG.exception("could not remove the namespaces of %s", layout.prefix)
