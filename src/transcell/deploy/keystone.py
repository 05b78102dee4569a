"""The real Keystone as the identity service of the distributed layout.

The embedded cloud checks its own tokens (``transcell.identity``); the
distributed layout instead runs the ``keystone`` package from PyPI as a process
of its own, on its own PostgreSQL or MariaDB database, and puts
keystonemiddleware in front of every transcell API. This module is what the
launcher calls to get there, in this order::

    conf = write_config(conf_dir, database_url)         # keystone.conf, 0600
    passwords = ensure_passwords(conf_dir)              # kept across restarts
    prepare(conf, passwords, public_identity_url,       # db_sync, keys, bootstrap
            internal_url=direct_url)
    server = start_server(conf, port=port)              # or Popen(serve_command(...))
                                                        # and wait_until_up(direct_url)
    populate(direct_url, passwords, service_endpoints(base_urls))
    clouds_yaml(public_identity_url, passwords)
    authtoken_conf(direct_url, passwords, www_authenticate_uri=public_identity_url)

where ``direct_url`` is Keystone's own ``http://127.0.0.1:PORT/identity/v3``.

Every step is idempotent: running all of them again on the same directory and
database changes nothing (no password, key, id or endpoint is regenerated), so a
restarted launcher simply repeats them.

Keystone keeps its options on the process-global ``oslo_config.cfg.CONF``, as
transcell does, and the two sets collide (both have ``[DEFAULT]
public_endpoint``). So Keystone never runs inside a transcell process: the
database and key steps run ``keystone-manage`` and the server runs
``transcell.deploy.keystone_wsgi``, each a subprocess of their own.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from transcell import statefiles

CONF_NAME = "keystone.conf"
PASSWORDS_NAME = "keystone-passwords.json"
LOG_NAME = "keystone.log"
DEFAULT_REGION = "RegionOne"
DEFAULT_DOMAIN = "Default"

#: the clouds of clouds.yaml: cloud name -> (user, project)
CLOUDS = (
    ("transcell-admin", "admin", "admin"),
    ("transcell-demo", "demo", "demo"),
    ("transcell-alt", "alt", "alt"),
    ("transcell-reader", "reader", "demo"),
    ("transcell-manager", "manager", "demo"),
)
#: people: user -> [(project, role)]; admin is made by ``keystone-manage bootstrap``
USER_ASSIGNMENTS: dict[str, list[tuple[str, str]]] = {
    "demo": [("demo", "member")],
    "alt": [("alt", "member")],
    "reader": [("demo", "reader")],
    "manager": [("demo", "manager")],
}
#: service users, in project ``service`` with roles admin and service: the APIs'
#: keystonemiddleware logs in as ``transcell``, Placement as ``placement``
SERVICE_USERS = ("transcell", "placement")
SERVICE_PROJECT = "service"
PROJECTS = ("demo", "alt", SERVICE_PROJECT)
#: keystone 30's bootstrap creates these (admin > manager > member > reader, and
#: service); ``populate`` makes sure of them anyway, in case of an older Keystone
ROLES = ("reader", "member", "manager", "admin", "service")

#: service type -> (service name, path below the base URL the launcher gives)
SERVICES = {
    "compute": ("nova", "/compute/v2.1"),
    "image": ("glance", "/image"),
    "network": ("neutron", "/network"),
    "placement": ("placement", "/placement"),
    "block-storage": ("cinder", "/volume/v3"),
    "volumev3": ("cinderv3", "/volume/v3"),
    "identity": ("keystone", "/identity"),
}
#: what ``service_endpoints`` lists by default: bootstrap already made the identity
#: entry; name "identity" explicitly to have ``populate`` move its URLs
API_SERVICES = ("compute", "image", "network", "placement", "block-storage", "volumev3")
INTERFACES = ("public", "internal")

PASSWORD_BYTES = 18
CACHE_SECONDS = 600


# -- configuration -----------------------------------------------------------


def write_config(conf_dir: str, database_url: str, *, public_endpoint: str | None = None,
                 token_expiration: int = 3600, password_hash_rounds: int | None = None,
                 debug: bool = False, cache: bool = True,
                 extra: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Write ``conf_dir/keystone.conf`` (0600: it holds the database URL) and return its path.

    Keys live in ``conf_dir/fernet-keys``, ``receipt-keys`` and
    ``credential-keys``; the log goes to ``conf_dir/keystone.log``. The file is
    rewritten each call, so a changed URL or option takes effect on the next
    start. ``public_endpoint`` is what Keystone puts in its links (version
    document, ``links.self``); unset, it follows each request's host and
    SCRIPT_NAME. ``password_hash_rounds`` lowers bcrypt's cost (tests only: each
    password login spends that CPU). ``cache`` turns on Keystone's cache in the
    server's own memory (entries dropped after ten minutes): it roughly halves
    the time of a request that carries a token, and is coherent because the
    layout runs one Keystone process; turn it off before running several.
    ``extra`` adds or overrides options, ``{section: {option: value}}``.
    """
    conf_dir = statefiles.private_dir(conf_dir)
    sections: dict[str, dict[str, Any]] = {
        "DEFAULT": {
            "log_file": os.path.join(conf_dir, LOG_NAME),
            "use_stderr": False,
            "debug": debug,
        },
        "database": {"connection": database_url},
        "token": {"provider": "fernet", "expiration": token_expiration},
        "fernet_tokens": {"key_repository": os.path.join(conf_dir, "fernet-keys")},
        "fernet_receipts": {"key_repository": os.path.join(conf_dir, "receipt-keys")},
        "credential": {"key_repository": os.path.join(conf_dir, "credential-keys")},
        "identity": {"driver": "sql"},
        "catalog": {"driver": "sql"},
        "cache": {"enabled": False},
    }
    if cache:
        sections["cache"] = {"enabled": True, "backend": "oslo_cache.dict",
                             "expiration_time": CACHE_SECONDS,
                             # the dict backend forgets entries only with its own setting
                             "backend_argument": f"expiration_time:{CACHE_SECONDS}"}
    if public_endpoint:
        sections["DEFAULT"]["public_endpoint"] = public_endpoint
    if password_hash_rounds is not None:
        sections["identity"]["password_hash_rounds"] = password_hash_rounds
    for section, options in (extra or {}).items():
        sections.setdefault(section, {}).update(options)
    path = os.path.join(conf_dir, CONF_NAME)
    statefiles.write_atomic(path, _render_ini(sections))
    # oslo.log would create the log 0644; request bodies in a debug log carry passwords
    statefiles.ensure_private_file(sections["DEFAULT"]["log_file"])
    return path


def _render_ini(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["# written by transcell; rewritten at every start", ""]
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            text = str(value)
            if "\n" in text:
                raise ValueError(f"option {section}.{key} must fit on one line")
            # oslo.config substitutes $name in values; $$ is a literal dollar
            lines.append(f"{key} = {text.replace('$', '$$')}")
        lines.append("")
    return "\n".join(lines)


def ensure_passwords(conf_dir: str) -> dict[str, str]:
    """The passwords of every user transcell logs in as, made once and then kept.

    They live in ``conf_dir/keystone-passwords.json`` (0600), next to the
    config, so a restart finds the same ones that are already in Keystone's
    database and in the operator's clouds.yaml.
    """
    conf_dir = statefiles.private_dir(conf_dir)
    path = os.path.join(conf_dir, PASSWORDS_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            passwords: dict[str, str] = json.load(f)
    except FileNotFoundError:
        passwords = {}
    wanted = ["admin", *USER_ASSIGNMENTS, *SERVICE_USERS]
    missing = [name for name in wanted if name not in passwords]
    for name in missing:
        passwords[name] = secrets.token_urlsafe(PASSWORD_BYTES)
    if missing:
        statefiles.write_atomic(path, json.dumps(passwords, indent=1, sort_keys=True))
    else:
        statefiles.tighten(path)
    return passwords


# -- keystone-manage -----------------------------------------------------------


class KeystoneManageError(RuntimeError):
    """keystone-manage failed; the message carries the tail of its output."""


def keystone_manage_path() -> str:
    """keystone-manage of the environment transcell runs in (the venv's bin)."""
    return os.path.join(os.path.dirname(sys.executable), "keystone-manage")


def keystone_manage(conf_file: str, *args: str, env: Mapping[str, str] | None = None,
                    timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run one keystone-manage command against ``conf_file``; raise on failure."""
    cmd = [keystone_manage_path(), "--config-file", conf_file, *args]
    full_env = dict(os.environ)
    # keystone-manage must read our file only, never one found in /etc or via these
    full_env.pop("OS_KEYSTONE_CONFIG_FILES", None)
    full_env.pop("OS_KEYSTONE_CONFIG_DIR", None)
    full_env.update(env or {})
    log_path = os.path.join(os.path.dirname(conf_file), LOG_NAME)
    log_start = _size(log_path)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        # keystone-manage logs its traceback to the log file, not to stderr (which
        # holds only warnings); quote what this run added there
        output = (proc.stdout + proc.stderr).strip().splitlines()[-10:]
        logged = _read_from(log_path, log_start).strip().splitlines()[-30:]
        tail = "\n".join([*output, f"-- {log_path} --", *logged])
        raise KeystoneManageError(
            f"keystone-manage {args[0] if args else ''} failed "
            f"(exit {proc.returncode}):\n{tail}")
    return proc


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def db_sync(conf_file: str) -> None:
    """Create or upgrade Keystone's schema (a no-op when it is current)."""
    keystone_manage(conf_file, "db_sync")


def _owner_args() -> list[str]:
    # the key repositories belong to whoever runs Keystone, which is us
    return ["--keystone-user", pwd.getpwuid(os.geteuid()).pw_name,
            "--keystone-group", grp.getgrgid(os.getegid()).gr_name]


def _has_keys(conf_file: str, repository: str) -> bool:
    # keystone-manage leaves an initialised repository alone anyway; looking first
    # saves its start-up (about two seconds each) on every restart
    return os.path.exists(os.path.join(os.path.dirname(conf_file), repository, "0"))


def fernet_setup(conf_file: str) -> None:
    """Create the token and receipt key repositories; keys already there are kept."""
    token_key_setup(conf_file)
    receipt_key_setup(conf_file)


def token_key_setup(conf_file: str) -> None:
    """The fernet keys tokens are encrypted with (``keystone-manage token_setup``).

    Not ``fernet_setup``: that one sets up the receipt repository too, and
    beside ``receipt_setup`` the two raced over the same temporary key file.
    """
    if not _has_keys(conf_file, "fernet-keys"):
        keystone_manage(conf_file, "token_setup", *_owner_args())


def receipt_key_setup(conf_file: str) -> None:
    """The keys of multi-factor auth receipts (``keystone-manage receipt_setup``)."""
    if not _has_keys(conf_file, "receipt-keys"):
        keystone_manage(conf_file, "receipt_setup", *_owner_args())


def credential_setup(conf_file: str) -> None:
    """Create the credential encryption keys; keys already there are kept."""
    if not _has_keys(conf_file, "credential-keys"):
        keystone_manage(conf_file, "credential_setup", *_owner_args())


def bootstrap(conf_file: str, admin_password: str, identity_url: str, *,
              internal_url: str | None = None, region: str = DEFAULT_REGION) -> None:
    """User, project and role ``admin`` (plus its system role), the standard roles with
    their implications, the region and the identity service with its endpoints.

    Keystone's bootstrap finds what exists and leaves it, so repeating it is
    harmless; it resets admin's password only when it differs from the one
    given. The password goes by environment, never on a command line others
    can read in ``ps``.
    """
    keystone_manage(
        conf_file, "bootstrap",
        "--bootstrap-username", "admin",
        "--bootstrap-project-name", "admin",
        "--bootstrap-role-name", "admin",
        "--bootstrap-service-name", "keystone",
        "--bootstrap-region-id", region,
        "--bootstrap-public-url", identity_url,
        "--bootstrap-internal-url", internal_url or identity_url,
        env={"OS_BOOTSTRAP_PASSWORD": admin_password})


@dataclass
class PrepareTimings:
    """Seconds spent in ``prepare`` (the launcher reports its start time).

    The three key repositories are set up side by side; ``keys`` is the slowest.
    """

    db_sync: float = 0.0
    keys: float = 0.0
    bootstrap: float = 0.0
    total: float = 0.0


def prepare(conf_file: str, passwords: Mapping[str, str], identity_url: str, *,
            internal_url: str | None = None, region: str = DEFAULT_REGION) -> PrepareTimings:
    """Everything Keystone needs before its server can start: schema, keys, bootstrap.

    Each keystone-manage spends about two seconds of CPU just starting, so
    the three key repositories are set up at once. Not alongside db_sync,
    though: measured, that made every one of them wait for the migration and
    the whole took longer than one after the other.
    """
    timings = PrepareTimings()
    began = time.monotonic()

    def timed(step: Callable[[str], None]) -> float:
        start = time.monotonic()
        step(conf_file)
        return time.monotonic() - start

    timings.db_sync = timed(db_sync)
    steps = (token_key_setup, receipt_key_setup, credential_setup)
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = [pool.submit(timed, step) for step in steps]
    timings.keys = max(future.result() for future in futures)
    start = time.monotonic()
    bootstrap(conf_file, passwords["admin"], identity_url, internal_url=internal_url,
              region=region)
    timings.bootstrap = time.monotonic() - start
    timings.total = time.monotonic() - began
    return timings


# -- the server process ----------------------------------------------------------


def serve_command(conf_file: str, port: int, *, host: str = "127.0.0.1",
                  prefix: str = "/identity", threads: int = 8) -> list[str]:
    """The command line of a Keystone server listening on ``host:port``.

    With ``prefix`` (default ``/identity``) the API is at
    ``http://host:port/identity/v3``, the same path as in the embedded cloud, so
    a front proxy can forward ``/identity`` unchanged; ``prefix=""`` serves it
    at the root. The process runs until SIGTERM or SIGINT.
    """
    cmd = [sys.executable, "-m", "transcell.deploy.keystone_wsgi", "--config-file", conf_file,
           "--host", host, "--port", str(port), "--threads", str(threads)]
    if prefix:
        cmd += ["--prefix", prefix]
    return cmd


OUTPUT_NAME = "keystone-server.out"
_LISTENING = "keystone listening on "


@dataclass
class KeystoneProcess:
    """A running Keystone server started by ``start_server``."""

    process: subprocess.Popen
    #: where it listens, with the prefix: http://127.0.0.1:PORT/identity
    url: str

    @property
    def auth_url(self) -> str:
        return self.url + "/v3"

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def start_server(conf_file: str, *, port: int = 0, host: str = "127.0.0.1",
                 prefix: str = "/identity", threads: int = 8,
                 timeout: float = 60.0) -> KeystoneProcess:
    """Start ``serve_command`` and return once Keystone answers.

    ``port=0`` lets the server pick a free port (no race with other processes
    between choosing and binding); the chosen one is read back from the line
    it prints. stdout and stderr go to ``keystone-server.out`` beside the
    config (start-up errors, warnings); the log proper is ``keystone.log``.
    """
    out_path = os.path.join(os.path.dirname(os.path.abspath(conf_file)), OUTPUT_NAME)
    statefiles.write_atomic(out_path, b"", durable=False)
    with open(out_path, "ab") as out:
        process = subprocess.Popen(
            serve_command(conf_file, port, host=host, prefix=prefix, threads=threads),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        url = _read_listening_url(out_path, process, timeout)
        wait_until_up(url + "/v3", timeout=timeout, process=process)
    except BaseException:
        KeystoneProcess(process, "").stop()
        raise
    return KeystoneProcess(process, url)


def _read_listening_url(out_path: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(out_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(_LISTENING):
                    return line[len(_LISTENING):].strip().rstrip("/")
        if process.poll() is not None:
            with open(out_path, encoding="utf-8", errors="replace") as f:
                tail = "".join(f.readlines()[-20:])
            raise RuntimeError(f"keystone exited with {process.returncode}:\n{tail}")
        time.sleep(0.1)
    raise TimeoutError(f"keystone did not start listening in {timeout:.0f}s (see {out_path})")


def wait_until_up(auth_url: str, timeout: float = 60.0,
                  process: subprocess.Popen | None = None) -> None:
    """Return once ``auth_url`` (…/v3) answers its version document.

    When ``process`` is given and exits first, fail at once with its exit code
    instead of waiting out the timeout.
    """
    url = auth_url.rstrip("/")
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"keystone exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"keystone at {url} did not answer in {timeout:.0f}s: {last}")


# -- users, projects, catalog -------------------------------------------------------


def service_endpoints(base_urls: Mapping[str, str] | str,
                      services: Iterable[str] = API_SERVICES) -> dict[str, tuple[str, str]]:
    """``{service type: (service name, url)}`` for ``populate``.

    ``base_urls`` is one base URL for every API (the layout where one front
    serves them all under their usual prefixes) or ``{service type: base URL}``
    where each API has its own server; the service's path (``/compute/v2.1``,
    ``/image``...) is appended either way.
    """
    result = {}
    for service_type in services:
        name, path = SERVICES[service_type]
        base = base_urls if isinstance(base_urls, str) else base_urls[service_type]
        result[service_type] = (name, base.rstrip("/") + path)
    return result


def admin_session(auth_url: str, admin_password: str) -> Any:
    """A keystoneauth session holding a system-scoped admin token.

    Keystone's default policies let only a system administrator manage
    projects, users and the catalog, so a project-scoped admin token is not
    enough; bootstrap gives admin the system role that this scope uses.
    """
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=auth_url, username="admin", password=admin_password,
                       user_domain_id="default", system_scope="all")
    return ks_session.Session(auth=auth)


def populate(auth_url: str, passwords: Mapping[str, str],
             endpoints: Mapping[str, tuple[str, str]], *, region: str = DEFAULT_REGION,
             internal_endpoints: Mapping[str, tuple[str, str]] | None = None) -> None:
    """Make the projects, users, role assignments and catalog entries transcell needs.

    ``auth_url`` is Keystone itself (``http://127.0.0.1:PORT/identity/v3``); every
    request goes there, whatever identity URL the catalog holds.

    ``endpoints`` is ``service_endpoints(...)``'s shape: service type -> (name,
    public URL); ``internal_endpoints`` the same for internal URLs (default: the
    public ones). Found entries are kept and only completed: a user's password
    is reset when it differs from ``passwords`` (so the file stays the truth),
    and an endpoint whose URL changed is updated in place.
    """
    from keystoneclient.v3 import client as ks_client

    # straight at auth_url: the catalog's identity URL may be a front that is not up yet
    v3_url = auth_url.rstrip("/")
    if not v3_url.endswith("/v3"):
        v3_url += "/v3"
    keystone = ks_client.Client(session=admin_session(auth_url, passwords["admin"]),
                                endpoint_override=v3_url)
    domain = keystone.domains.get("default")
    roles = {role.name: role for role in keystone.roles.list()}
    for name in ROLES:
        if name not in roles:
            roles[name] = keystone.roles.create(name)
    projects = {p.name: p for p in keystone.projects.list(domain=domain)}
    missing = [name for name in PROJECTS if name not in projects]
    for name, project in zip(missing, _parallel(
            lambda name=name: keystone.projects.create(
                name, domain, description=f"transcell {name} project")
            for name in missing), strict=True):
        projects[name] = project

    users = {u.name: u for u in keystone.users.list(domain=domain)}
    held = {(a.user["id"], a.scope["project"]["id"], a.role["id"])
            for a in keystone.role_assignments.list()
            if getattr(a, "user", None) and "project" in getattr(a, "scope", {})}
    grants: dict[str, list[tuple[str, str]]] = dict(USER_ASSIGNMENTS)
    for name in SERVICE_USERS:
        grants[name] = [(SERVICE_PROJECT, "admin"), (SERVICE_PROJECT, "service")]

    def ensure_user(name: str, assignments: list[tuple[str, str]]) -> None:
        user = users.get(name)
        if user is None:
            user = keystone.users.create(name, domain=domain, password=passwords[name],
                                         default_project=projects[assignments[0][0]])
        elif not _password_works(auth_url, name, passwords[name]):
            keystone.users.update(user, password=passwords[name])
        for project_name, role_name in assignments:
            project, role = projects[project_name], roles[role_name]
            if (user.id, project.id, role.id) not in held:
                keystone.roles.grant(role, user=user, project=project)

    internal = internal_endpoints or endpoints
    services = {s.type: s for s in keystone.services.list()}
    existing = keystone.endpoints.list(region=region)

    def ensure_service(service_type: str, service_name: str, url: str) -> None:
        service = services.get(service_type)
        if service is None:
            service = keystone.services.create(service_name, type=service_type)
        urls = {"public": url, "internal": internal.get(service_type, (service_name, url))[1]}
        for interface in INTERFACES:
            found = [e for e in existing
                     if e.service_id == service.id and e.interface == interface]
            if not found:
                keystone.endpoints.create(service, urls[interface], interface=interface,
                                          region=region)
            elif found[0].url != urls[interface]:
                keystone.endpoints.update(found[0], url=urls[interface])

    _parallel([*(lambda n=name, a=assignments: ensure_user(n, a)
                 for name, assignments in grants.items()),
               *(lambda t=service_type, n=name, u=url: ensure_service(t, n, u)
                 for service_type, (name, url) in endpoints.items())])


#: requests ``populate`` keeps in flight: each costs Keystone a token validation and
#: a few queries, and on a busy machine one at a time makes start-up seconds longer
POPULATE_WORKERS = 4


def _parallel(calls: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` on a few threads; their results in order, or the first error."""
    with ThreadPoolExecutor(max_workers=POPULATE_WORKERS) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]


def _password_works(auth_url: str, user_name: str, password: str) -> bool:
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=auth_url, username=user_name, password=password,
                       user_domain_id="default", unscoped=True)
    try:
        auth.get_token(ks_session.Session())
    except ks_exc.Unauthorized:
        return False
    return True


# -- what clients and the APIs are given ---------------------------------------------


def clouds_yaml(auth_url: str, passwords: Mapping[str, str], *,
                region: str = DEFAULT_REGION) -> dict[str, Any]:
    """clouds.yaml content for the five clouds of the embedded mode, against Keystone.

    Same shape as ``transcell.identity.store.clouds_yaml``, so tools and tests
    written for the embedded cloud run unchanged against the distributed one.
    """
    clouds: dict[str, Any] = {}
    for cloud, user_name, project_name in CLOUDS:
        clouds[cloud] = {
            "auth": {
                "auth_url": auth_url,
                "username": user_name,
                "password": passwords[user_name],
                "project_name": project_name,
                "user_domain_name": DEFAULT_DOMAIN,
                "project_domain_name": DEFAULT_DOMAIN,
            },
            "region_name": region,
            "identity_api_version": 3,
            "interface": "public",
        }
    return {"clouds": clouds}


def authtoken_conf(auth_url: str, passwords: Mapping[str, str], *,
                   www_authenticate_uri: str | None = None, service_user: str = "transcell",
                   region: str = DEFAULT_REGION, cache_time: int = 300,
                   interface: str = "internal") -> dict[str, Any]:
    """The ``[keystone_authtoken]`` settings for ``identity.auth.wrap_with_keystonemiddleware``.

    No memcached: without ``memcached_servers`` auth_token keeps validated
    tokens in a cache of its own process for ``token_cache_time`` seconds,
    which is what each API process needs. A token revoked in Keystone may
    therefore still pass an API for up to that long; ``cache_time=-1`` trades
    that for a call to Keystone on every request (never 0: the in-process cache
    reads 0 as "keep forever").

    auth_token finds the identity API to validate tokens at in the service
    user's catalog, on ``interface``: internal by default, so an API reaches
    Keystone directly (bootstrap's ``internal_url``) rather than through the
    public front, which may be that same API.
    """
    if cache_time == 0:
        raise ValueError("token_cache_time 0 would cache tokens forever; use -1 for none")
    return {
        "www_authenticate_uri": www_authenticate_uri or auth_url,
        "auth_url": auth_url,
        "auth_type": "password",
        "username": service_user,
        "password": passwords[service_user],
        "project_name": SERVICE_PROJECT,
        "user_domain_name": DEFAULT_DOMAIN,
        "project_domain_name": DEFAULT_DOMAIN,
        "region_name": region,
        "interface": interface,
        "token_cache_time": cache_time,
        "service_token_roles_required": True,
    }
