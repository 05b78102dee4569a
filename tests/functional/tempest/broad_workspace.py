"""The broad Tempest run's workspace: which tests, which features, which accounts.

Everything the broad run tells Tempest beyond the common workspace
(``tempest_workspace``) is here, in one place: the include regexes
(``BROAD_INCLUDE``), the feature flags (``COMPUTE_FEATURES`` and the network
extensions read from the cloud), a second set of pre-provisioned accounts
so two Tempest workers never run out of credentials (Tempest's pre-provisioned
credential provider fails a class outright when every matching account is
taken, it does not wait), and the admin credentials the classes that force
dynamic credentials create their own accounts with.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass

import tempest_workspace as tw
import yaml
from cloudclients import CloudProcess

#: The whole compute tree, Glance v2, and the Neutron modules whose resources the
#: network subset serves (networks, subnets, ports, security groups, tags, routers,
#: subnet pools, extensions, versions). Floating IPs, agents, DHCP options, address
#: pairs, service providers and the admin tree are not served.
BROAD_INCLUDE: tuple[str, ...] = (
    r"^tempest\.api\.compute\.",
    r"^tempest\.api\.image\.v2\.",
    r"^tempest\.api\.network\.test_networks\.",
    r"^tempest\.api\.network\.test_networks_negative\.",
    r"^tempest\.api\.network\.test_ports\.",
    r"^tempest\.api\.network\.test_security_groups\.",
    r"^tempest\.api\.network\.test_security_groups_negative\.",
    r"^tempest\.api\.network\.test_tags\.",
    r"^tempest\.api\.network\.test_routers\.",
    r"^tempest\.api\.network\.test_routers_negative\.",
    r"^tempest\.api\.network\.test_subnetpools_extensions\.",
    r"^tempest\.api\.network\.test_extensions\.",
    r"^tempest\.api\.network\.test_versions\.",
)

#: ``[compute-feature-enabled]``: what the cloud serves once the everyday Compute
#: API is in. The single place these flags are written; a flag switched off here
#: is a feature transcell does not offer (the README's skip reasons say which).
COMPUTE_FEATURES: dict[str, str] = {
    "resize": "true",
    "cold_migration": "true",
    "console_output": "true",
    "snapshot": "true",
    "pause": "true",
    "suspend": "true",
    "shelve": "true",
    "shelve_migrate": "true",
    "rescue": "true",
    "stable_rescue": "false",
    "change_password": "true",
    "metadata_service": "false",
    "interface_attach": "false",
    "live_migration": "false",
    "block_migration_for_live_migration": "false",
    "config_drive": "false",
    "personality": "false",
    "disk_config": "true",
    "vnc_console": "false",
    "serial_console": "false",
    "spice_console": "false",
    "attach_encrypted_volume": "false",
    "swap_volume": "false",
    "volume_multiattach": "false",
    "hostname_fqdn_sanitization": "false",
    "nova_policy_roles": "admin,member,reader",
    # the scheduler hints transcell honours (Tempest asks by Nova's filter names)
    "scheduler_enabled_filters": ("AvailabilityZoneFilter,ComputeFilter,"
                                  "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,"
                                  "SameHostFilter,DifferentHostFilter"),
}

#: ``[image-feature-enabled]`` beyond the common workspace's.
IMAGE_FEATURES: dict[str, str] = {
    "import_image": "false",
    "os_glance_reserved": "false",
    "manage_locations": "false",
    "image_conversion": "false",
    "image_format_enforcement": "false",
}

#: ``[network-feature-enabled]``: the network subset's routers are records without
#: gateway ports, so no floating IPs and no public network; it has no IPv6 address
#: modes (SLAAC, DHCPv6), so Tempest's IPv6 classes stay off.
NETWORK_FEATURES: dict[str, str] = {
    "floating_ips": "false",
    "ipv6": "false",
    "ipv6_subnet_attributes": "false",
}

CONCURRENCY = 2

#: The second account set: user -> (project, roles). Projects of their own, so the
#: second worker's servers and quotas never meet the first's.
EXTRA_PROJECTS = ("demo2", "alt2")
EXTRA_USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin2": ("admin", ("admin",)),
    "demo2": ("demo2", ("member",)),
    "alt2": ("alt2", ("member",)),
    "reader2": ("demo2", ("reader",)),
    "manager2": ("demo2", ("manager",)),
    # Tempest's service persona (server external events, assisted snapshots)
    "tempest-service": ("service", ("service",)),
    # ... and the one that is also an administrator (``['service_user', 'admin',
    # 'service']``). Tempest may hand any of these out as a plain admin too, and a
    # class holds two admin accounts at once: with two per worker a class asking
    # for both always finds one left.
    **{f"tempest-service-admin{n}": ("service", ("admin", "service"))
       for n in range(1, 2 * CONCURRENCY + 1)},
}

#: A second public image with the base image's bytes (the chunk store keeps them
#: once), so Tempest's rebuild-to-another-image tests have ``image_ref_alt``.
ALT_IMAGE_NAME = "transcell-base-alt"

def provision_extra_accounts(state_dir: str) -> list[dict]:
    """Add the second account set to the state directory's identity file before
    ``transcell up`` starts (it completes the file and keeps what is there), and
    return their accounts.yaml entries."""
    from transcell import statefiles
    from transcell.identity import store

    idstore = store.bootstrap(state_dir)
    with open(idstore.path, encoding="utf-8") as fh:
        data = json.load(fh)
    projects = {p["name"]: p for p in data["projects"]}
    for name in EXTRA_PROJECTS:
        if name not in projects:
            projects[name] = {"id": uuid.uuid4().hex, "name": name,
                              "domain_id": store.DEFAULT_DOMAIN_ID,
                              "description": f"Tempest {name} project"}
            data["projects"].append(projects[name])
    roles = {r["name"]: r["id"] for r in data["roles"]}
    users = {u["name"]: u for u in data["users"]}
    accounts = []
    for user_name, (project_name, user_roles) in EXTRA_USERS.items():
        project = projects[project_name]
        user = users.get(user_name)
        if user is None:
            user = {"id": uuid.uuid4().hex, "name": user_name,
                    "domain_id": store.DEFAULT_DOMAIN_ID,
                    "password": secrets.token_urlsafe(store.PASSWORD_BYTES),
                    "default_project_id": project["id"]}
            data["users"].append(user)
        for role in user_roles:
            grant = {"user_id": user["id"], "project_id": project["id"],
                     "role_id": roles[role]}
            if grant not in data["assignments"]:
                data["assignments"].append(grant)
        accounts.append({
            "username": user_name, "password": user["password"],
            "project_name": project_name, "user_domain_name": store.DEFAULT_DOMAIN_NAME,
            "project_domain_name": store.DEFAULT_DOMAIN_NAME, "roles": list(user_roles),
            "resources": {"network": tw.NETWORK_NAME},
        })
    statefiles.write_atomic(idstore.path, json.dumps(data, indent=1, sort_keys=True))
    return accounts


def alt_image(cloud: CloudProcess) -> str:
    """Upload the base image's bytes again under ``ALT_IMAGE_NAME``; its id."""
    found = cloud.request("GET", f"/image/v2/images?name={ALT_IMAGE_NAME}")
    found.raise_for_status()
    if found.json()["images"]:
        return found.json()["images"][0]["id"]
    base = cloud.request("GET", f"/image/v2/images?name={tw.IMAGE_NAME}")
    base.raise_for_status()
    base_id = base.json()["images"][0]["id"]
    data = cloud.request("GET", f"/image/v2/images/{base_id}/file")
    data.raise_for_status()
    made = cloud.request("POST", "/image/v2/images", json={
        "name": ALT_IMAGE_NAME, "visibility": "public", "disk_format": "raw",
        "container_format": "bare", "min_disk": 1})
    made.raise_for_status()
    image_id = made.json()["id"]
    uploaded = cloud.request("PUT", f"/image/v2/images/{image_id}/file", data=data.content,
                             headers={"Content-Type": "application/octet-stream"})
    uploaded.raise_for_status()
    return image_id


def _network_extensions(cloud: CloudProcess) -> str:
    resp = cloud.request("GET", "/network/v2.0/extensions")
    resp.raise_for_status()
    return ",".join(sorted(e["alias"] for e in resp.json()["extensions"]))


def write_broad_workspace(cloud: CloudProcess, workspace: str,
                          extra_accounts: list[dict]) -> str:
    """The common workspace (volumes on), then the broad run's flags, include
    regexes and the second account set; returns the config file's path."""
    config_file = tw.write_workspace(cloud, workspace, (), volumes=True)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(config_file)
    conf["compute-feature-enabled"].update(COMPUTE_FEATURES)
    conf["compute"]["image_ref_alt"] = alt_image(cloud)
    conf["image-feature-enabled"].update(IMAGE_FEATURES)
    # the image service never fetches an image from a URL (no web-download import,
    # no Glance import tasks, no locations): Tempest's HTTP-image classes stay off
    conf["image"]["http_image"] = ""
    conf["network-feature-enabled"].update(NETWORK_FEATURES)
    conf["network-feature-enabled"]["api_extensions"] = _network_extensions(cloud)
    conf["auth"].update(admin_credentials(cloud))
    # the admin password is in it now: private to the owner, like the accounts file
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        conf.write(fh)
    with open(os.path.join(workspace, "include-list.txt"), "w") as fh:
        fh.writelines(regex + "\n" for regex in BROAD_INCLUDE)
    accounts_file = conf["auth"]["test_accounts_file"]
    with open(accounts_file) as fh:
        accounts = yaml.safe_load(fh)
    with open(accounts_file, "w") as fh:
        yaml.safe_dump(_alt_first(accounts + extra_accounts), fh, default_flow_style=False)
    return config_file


def admin_credentials(cloud: CloudProcess) -> dict[str, str]:
    """``[auth] admin_*``: the classes that force dynamic credentials (the quota
    admin tests) make their own project and users with these through the identity
    admin API and delete them afterwards; every other class still takes its
    accounts from the pre-provisioned file (``use_dynamic_credentials`` stays off)."""
    auth = cloud.credentials("transcell-admin")
    return {"admin_username": auth["username"], "admin_password": auth["password"],
            "admin_project_name": auth["project_name"],
            "admin_domain_name": auth["user_domain_name"],
            "admin_user_domain_name": auth["user_domain_name"],
            "admin_project_domain_name": auth["project_domain_name"]}


def _alt_first(accounts: list[dict]) -> list[dict]:
    """Tempest's ``alt`` is the first free non-admin account in file order (the
    primary is picked by project instead), so the alt projects' members go first:
    otherwise ``alt`` can be the primary's own project manager, and "another
    project's server" tests would act inside one project."""
    return sorted(accounts, key=lambda a: not a["project_name"].startswith("alt"))


def run_broad(workspace: str, config_file: str, timeout: float,
              concurrency: int = CONCURRENCY) -> tw.TempestRun:
    """``tempest run --concurrency N --subunit`` over the include regexes; the
    stream goes to ``WORKSPACE/tempest.subunit`` as it is produced, so a run cut
    off at ``timeout`` still reports what finished."""
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHON=sys.executable, HOME=workspace,
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    for name in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "TEMPEST_CONFIG", "TEMPEST_CONFIG_DIR"):
        env.pop(name, None)
    cmd = [os.path.join(bin_dir, "tempest"), "run", "--concurrency", str(concurrency),
           "--subunit", "--config-file", config_file,
           "--include-list", os.path.join(workspace, "include-list.txt")]
    subunit_path = os.path.join(workspace, "tempest.subunit")
    stderr_path = os.path.join(workspace, "tempest-run.stderr")
    timed_out = False
    with open(subunit_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=workspace, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            tw._stop_group(proc)
            returncode = proc.returncode
    with open(subunit_path, "rb") as fh:
        results = tw.parse_subunit(fh.read())
    with open(stderr_path, errors="replace") as fh:
        stderr = fh.read()
    return tw.TempestRun(workspace, returncode, stderr, results, timed_out)


_FIXTURE = re.compile(r"^(?:setUpClass|tearDownClass) \((?P<cls>[^)]+)\)")


@dataclass
class Outcome:
    """One test's outcome. Tempest only lists the tests of a class whose setup
    skipped or failed; they take the setup's outcome here, and ``key`` (the id the
    known-failures list uses) is then the setup's id, one line for the class."""

    name: str
    status: str  # "passed", "failed", "skipped" or "unfinished"
    reason: str
    key: str
    result: tw.TempestResult


def fixture_class(result: tw.TempestResult) -> str | None:
    match = _FIXTURE.match(result.test_id)
    return match.group("cls") if match else None


def outcomes(results: dict[str, tw.TempestResult]) -> list[Outcome]:
    """Every listed test once, plus a failing class fixture that no listed test
    inherits (a ``tearDownClass`` failing after its tests passed)."""
    fixtures: dict[str, tw.TempestResult] = {}
    for result in results.values():
        cls = fixture_class(result)
        if cls and result.finished and result.status != "success":
            fixtures.setdefault(cls, result)
    found: list[Outcome] = []
    inherited: set[str] = set()
    for result in results.values():
        if result.is_class_fixture:
            continue
        source = result
        if not result.finished:
            source = fixtures.get(result.name.rsplit(".", 1)[0], result)
        if not source.finished:
            found.append(Outcome(result.name, "unfinished", "", result.name, result))
            continue
        key = source.test_id if source.is_class_fixture else result.name
        if source.is_class_fixture:
            inherited.add(source.test_id)
        found.append(Outcome(result.name, _STATUS.get(source.status, "failed"),
                             _reason(source), key, source))
    for fixture in fixtures.values():
        if fixture.test_id not in inherited and fixture.status != "skip":
            found.append(Outcome(fixture.test_id, "failed", _reason(fixture),
                                 fixture.test_id, fixture))
    return found


_STATUS = {"success": "passed", "skip": "skipped"}


def _reason(result: tw.TempestResult) -> str:
    if result.status == "skip":
        return " ".join((result.details.get("reason") or "no reason given").split())
    lines = (result.details.get("traceback") or "").strip().splitlines()
    return lines[-1] if lines else result.status
