"""A Tempest workspace aimed at a running ``transcell up``, and a way to run it.

The workspace is a plain directory: ``etc/tempest.conf``, ``etc/accounts.yaml``
(pre-provisioned credentials, so Tempest never needs the Keystone admin API
to create users) and the include list of the tests to run. ``tempest run
--config-file`` runs in it (writing its ``.stestr.conf`` there) and its subunit
stream is parsed into one result per test id.

Everything Tempest is told about the cloud is read from the cloud itself:
credentials from its ``clouds.yaml``, the image id from Glance, the
microversion range from the compute version document, the region from the
catalog.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml
from cloudclients import CloudProcess

IMAGE_NAME = "transcell-base"
NETWORK_NAME = "private"
#: m1.tiny, and m1.small: bigger on every axis, so a resize really changes it.
FLAVOR_REF = "1"
FLAVOR_REF_ALT = "2"

#: clouds.yaml entry -> the roles Tempest may pick that account for. Each role
#: is listed once: Tempest matches accounts by the roles written here, not by
#: the roles Keystone would imply. The member, manager and reader share the
#: demo project, as Tempest's project personas (primary, project_manager,
#: project_reader) must.
ACCOUNTS = (
    ("transcell-admin", ["admin"]),
    ("transcell-demo", ["member"]),
    ("transcell-manager", ["manager"]),
    ("transcell-reader", ["reader"]),
    ("transcell-alt", ["member"]),
)


@dataclass
class TempestResult:
    """One test id's outcome as subunit reported it."""

    test_id: str
    status: str
    details: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The id without Tempest's ``[id-...,attrs]`` suffix."""
        return self.test_id.split("[", 1)[0]

    @property
    def finished(self) -> bool:
        """``exists`` only lists the test; ``inprogress`` is one the run never ended."""
        return self.status not in ("exists", "inprogress")

    @property
    def is_class_fixture(self) -> bool:
        """``setUpClass (module.Class)`` and ``tearDownClass (...)`` pseudo-tests."""
        return self.test_id.startswith(("setUpClass ", "tearDownClass "))

    def explanation(self, lines: int = 12) -> str:
        """The status, a skip's reason and the end of the traceback."""
        parts = [f"{self.test_id}: {self.status}"]
        if self.details.get("reason"):
            parts.append(self.details["reason"].rstrip())
        if self.details.get("traceback"):
            parts.extend(self.details["traceback"].rstrip().splitlines()[-lines:])
        return "\n".join(parts)


@dataclass
class TempestRun:
    workspace: str
    returncode: int
    stderr: str
    results: dict[str, TempestResult]
    timed_out: bool = False

    def by_name(self, name: str) -> TempestResult | None:
        return next((r for r in self.results.values() if r.name == name), None)

    def class_failures(self) -> list[TempestResult]:
        """setUpClass/tearDownClass errors, which Tempest reports under their own ids."""
        return [r for r in self.results.values()
                if r.is_class_fixture and r.status != "success"]

    def test_names(self) -> set[str]:
        """Tests that ran to an outcome (not merely listed, or cut off by a timeout)."""
        return {r.name for r in self.results.values()
                if not r.is_class_fixture and r.finished}


def include_regex(test_name: str) -> str:
    """Exactly this test: Tempest ids end in ``[id-...]``, so anchor on the bracket."""
    return "^" + re.escape(test_name) + r"\["


def write_workspace(cloud: CloudProcess, workspace: str, tests: Iterable[str],
                    volumes: bool = False) -> str:
    """Write ``etc/tempest.conf``, ``etc/accounts.yaml`` and the include list; return
    the config file's path. ``volumes`` tells Tempest the block storage service is
    there (Cinder's tests and the compute tests that use volumes run)."""
    etc = os.path.join(workspace, "etc")
    os.makedirs(etc, exist_ok=True)
    accounts_file = os.path.join(etc, "accounts.yaml")
    # The accounts carry clear-text passwords: private to the owner from the start.
    fd = os.open(accounts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(_accounts(cloud), fh, default_flow_style=False)
    with open(os.path.join(workspace, "include-list.txt"), "w") as fh:
        fh.writelines(include_regex(t) + "\n" for t in tests)
    config_file = os.path.join(etc, "tempest.conf")
    conf = _tempest_conf(cloud, workspace, accounts_file)
    if volumes:
        _enable_volumes(cloud, conf)
    with open(config_file, "w") as fh:
        conf.write(fh)
    return config_file


def _accounts(cloud: CloudProcess) -> list[dict]:
    accounts = []
    for cloud_name, roles in ACCOUNTS:
        auth = cloud.credentials(cloud_name)
        accounts.append({
            "username": auth["username"],
            "password": auth["password"],
            "project_name": auth["project_name"],
            "user_domain_name": auth["user_domain_name"],
            "project_domain_name": auth["project_domain_name"],
            "roles": roles,
            "resources": {"network": NETWORK_NAME},
        })
    return accounts


def _compute_versions(cloud: CloudProcess) -> tuple[str, str]:
    resp = cloud.request("GET", "/compute/", token=None)
    resp.raise_for_status()
    current = next(v for v in resp.json()["versions"] if v["status"] == "CURRENT")
    return current["min_version"], current["version"]


def _image_id(cloud: CloudProcess) -> str:
    resp = cloud.request("GET", f"/image/v2/images?name={IMAGE_NAME}")
    resp.raise_for_status()
    images = resp.json()["images"]
    if len(images) != 1:
        raise RuntimeError(f"expected one {IMAGE_NAME} image, found {images}")
    return images[0]["id"]


def _region(cloud: CloudProcess) -> str:
    with open(cloud.clouds_yaml) as fh:
        return yaml.safe_load(fh)["clouds"]["transcell-admin"]["region_name"]


def _tempest_conf(cloud: CloudProcess, workspace: str,
                  accounts_file: str) -> configparser.ConfigParser:
    min_version, max_version = _compute_versions(cloud)
    image = _image_id(cloud)
    region = _region(cloud)
    identity = f"{cloud.base_url}/identity"
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_dict({
        "DEFAULT": {
            "debug": "true",
            "log_dir": workspace,
            "log_file": "tempest.log",
            "use_stderr": "false",
        },
        "oslo_concurrency": {"lock_path": os.path.join(workspace, "locks")},
        "auth": {
            "use_dynamic_credentials": "false",
            "test_accounts_file": accounts_file,
            "default_credentials_domain_name": "Default",
            "create_isolated_networks": "false",
            "admin_domain_scope": "false",
        },
        "identity": {
            "uri_v3": f"{identity}/v3",
            "auth_version": "v3",
            "region": region,
            "admin_role": "admin",
            "default_domain_id": "default",
        },
        "identity-feature-enabled": {
            "api_v2": "false",
            "api_v3": "true",
        },
        # transcell's policy has the new defaults (readers read, members act,
        # admins migrate) and no manager-only rules.
        "enforce_scope": {"nova": "true"},
        "compute": {
            "region": region,
            "image_ref": image,
            "image_ref_alt": image,
            "flavor_ref": FLAVOR_REF,
            "flavor_ref_alt": FLAVOR_REF_ALT,
            "fixed_network_name": NETWORK_NAME,
            "min_compute_nodes": "2",
            "min_microversion": min_version,
            "max_microversion": max_version,
            "build_interval": "1",
            "build_timeout": "30",
        },
        "compute-feature-enabled": {
            "resize": "true",
            "cold_migration": "true",
            "live_migration": "false",
            "nova_policy_roles": "admin,member,reader",
            "console_output": "false",
            "snapshot": "false",
            "pause": "false",
            "suspend": "false",
            "shelve": "false",
            "rescue": "false",
            "change_password": "false",
            "interface_attach": "false",
            "metadata_service": "false",
            "config_drive": "false",
            "personality": "false",
            "disk_config": "false",
            "vnc_console": "false",
            "serial_console": "false",
            "spice_console": "false",
            "attach_encrypted_volume": "false",
            "swap_volume": "false",
            "volume_multiattach": "false",
        },
        "image": {"region": region},
        "image-feature-enabled": {"api_v1": "false", "api_v2": "true"},
        "network": {
            "region": region,
            "project_networks_reachable": "false",
            "shared_physical_network": "false",
        },
        "network-feature-enabled": {"ipv6": "false"},
        "placement": {"region": region},
        "validation": {"run_validation": "false"},
        "service_available": {
            "nova": "true",
            "glance": "true",
            "neutron": "true",
            "placement": "true",
            "cinder": "false",
            "swift": "false",
            "horizon": "false",
        },
    })
    return conf


def run_tempest(workspace: str, config_file: str, timeout: float) -> TempestRun:
    """``tempest run --serial --subunit`` over the include list.

    The subunit stream goes to ``WORKSPACE/tempest.subunit`` as it is produced, so
    a run stopped at ``timeout`` still reports every test that finished; the
    debug log of every request is ``WORKSPACE/tempest.log``.
    """
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHON=sys.executable, HOME=workspace,
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    for name in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "TEMPEST_CONFIG", "TEMPEST_CONFIG_DIR"):
        env.pop(name, None)
    cmd = [os.path.join(bin_dir, "tempest"), "run", "--serial", "--subunit",
           "--config-file", config_file,
           "--include-list", os.path.join(workspace, "include-list.txt")]
    subunit_path = os.path.join(workspace, "tempest.subunit")
    stderr_path = os.path.join(workspace, "tempest-run.stderr")
    timed_out = False
    with open(subunit_path, "wb") as out, open(stderr_path, "wb") as err:
        # A session of its own, so a timeout stops the stestr worker too.
        proc = subprocess.Popen(cmd, cwd=workspace, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc)
            returncode = proc.returncode
    with open(subunit_path, "rb") as fh:
        results = parse_subunit(fh.read())
    with open(stderr_path, errors="replace") as fh:
        stderr = fh.read()
    return TempestRun(workspace, returncode, stderr, results, timed_out)


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def parse_subunit(stream: bytes) -> dict[str, TempestResult]:
    """The final status of every test id in a subunit v2 stream."""
    import subunit
    import testtools

    results: dict[str, TempestResult] = {}

    def on_test(test: dict) -> None:
        details = {}
        for name, content in test["details"].items():
            try:
                details[name] = content.as_text()
            except Exception:  # noqa: BLE001 - binary attachments are not needed
                continue
        results[test["id"]] = TempestResult(test["id"], test["status"], details)

    case = subunit.ByteStreamToStreamResult(io.BytesIO(stream), non_subunit_name="stdout")
    sink = testtools.StreamToDict(on_test)
    sink.startTestRun()
    try:
        case.run(sink)
    finally:
        sink.stopTestRun()
    return results


def _volume_versions(cloud: CloudProcess) -> tuple[str, str]:
    resp = cloud.request("GET", "/volume/", token=None)
    current = next(v for v in resp.json()["versions"] if v["status"] == "CURRENT")
    return current["min_version"], current["version"]


def _enable_volumes(cloud: CloudProcess, conf: configparser.ConfigParser) -> None:
    """What the volume service serves, as Tempest's options call it; nothing more."""
    min_version, max_version = _volume_versions(cloud)
    resp = cloud.request("GET", "/volume/v3/extensions")
    resp.raise_for_status()
    extensions = ",".join(e["alias"] for e in resp.json()["extensions"])
    conf["service_available"]["cinder"] = "true"
    conf["volume"] = {
        "region": conf["compute"]["region"],
        "catalog_type": "block-storage",
        "min_microversion": min_version,
        "max_microversion": max_version,
        "volume_size": "1",
        "build_interval": "1",
        "build_timeout": "30",
        "storage_protocol": "file",
        "vendor_name": "transcell",
    }
    conf["volume-feature-enabled"] = {
        "api_v3": "true",
        "backup": "false",
        "snapshot": "true",
        "clone": "true",
        "manage_volume": "false",
        "manage_snapshot": "false",
        "extend_attached_volume": "false",
        "extend_volume_with_snapshot": "false",
        "multi_backend": "false",
        "volume_revert": "false",
        "cluster_active_active": "false",
        "volume_types_for_data_volume": "",
        "api_extensions": extensions,
    }


class TempestTestFailed(AssertionError):
    """Tempest ran the test and it failed (the only failure an xfail may allow)."""


def where(run: TempestRun) -> str:
    return f"(Tempest workspace, with tempest.log: {run.workspace})"


def check_ran_exactly(run: TempestRun, tests: Iterable[str], timeout: float) -> None:
    """The include list selected every listed test and nothing else, class setups and
    teardowns all succeeded, and the run finished in time."""
    import pytest
    listed = set(tests)
    problems = []
    if run.timed_out:
        problems.append(f"tempest run did not finish within {timeout}s")
    missing = sorted(listed - run.test_names())
    extra = sorted(run.test_names() - listed)
    if missing:
        problems.append("never ran: " + ", ".join(missing))
    if extra:
        problems.append("ran but not listed: " + ", ".join(extra))
    problems.extend(r.explanation() for r in run.class_failures())
    if problems:
        pytest.fail("\n".join(problems) + "\n" + run.stderr[-3000:] + "\n" + where(run),
                    pytrace=False)


def check_passed(run: TempestRun, name: str) -> None:
    """Tempest ran ``name`` and it passed; a skip or a test cut off is a failure too."""
    import pytest
    result = run.by_name(name)
    if result is None:
        fixture_errors = "\n".join(r.explanation() for r in run.class_failures())
        pytest.fail(f"Tempest never ran {name}\n{fixture_errors}\n{where(run)}",
                    pytrace=False)
    if result.status == "success":
        return
    if result.status == "fail":
        raise TempestTestFailed(f"{result.explanation()}\n{where(run)}")
    if result.status == "skip":
        pytest.fail(f"Tempest skipped it, which counts as a failure:\n"
                    f"{result.explanation()}", pytrace=False)
    if not result.finished:
        pytest.fail(f"Tempest never finished {name} (timed out: {run.timed_out})\n"
                    f"{where(run)}", pytrace=False)
    pytest.fail(f"not a pass: {result.explanation()}", pytrace=False)
