"""The users, projects and roles of the embedded cloud, kept in one JSON file.

The embedded cloud needs a handful of fixed identities that clients can log in
with, plus the few an administrator (or Tempest's dynamic credentials) adds
through the API, not a directory service, so a file in the state directory is
enough. It holds the fixed users' clear-text passwords because transcell writes
them into clouds.yaml for the operator (users added through the API keep only a
hash); the file is therefore private to its owner (mode 0600) and always
replaced atomically so a crash never leaves half a file behind.

The file also carries the key tokens are signed with, so tokens stay valid
across restarts, and the audit ids of revoked tokens. The file is re-read when
another process changed it, so several API processes sharing a state directory
agree on revocations and on the users, projects and grants added since.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from transcell import exception, statefiles
from transcell.conf import CONF
from transcell.identity import passwords

FILE_NAME = "identity.json"
FORMAT_VERSION = 1

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"

PROJECT_NAMES = ("admin", "demo", "alt", "service")
ROLE_NAMES = ("admin", "manager", "member", "reader", "service")
#: Keystone's default role hierarchy: holding a role grants the ones below it.
IMPLIED_ROLES = {"admin": ["manager"], "manager": ["member"], "member": ["reader"]}
#: user name -> (project name, role name) assignments
USER_ASSIGNMENTS = {
    "admin": [("admin", "admin")],
    "demo": [("demo", "member")],
    "alt": [("alt", "member")],
    "reader": [("demo", "reader")],
    "manager": [("demo", "manager")],
}

PASSWORD_BYTES = 18  # 24 url-safe characters

T = TypeVar("T")


@dataclass(frozen=True)
class Domain:
    id: str
    name: str


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    domain_id: str
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class User:
    """A user. The embedded cloud's own users keep a clear-text ``password`` (it goes
    into clouds.yaml); users made through the API keep only ``password_hash``."""

    id: str
    name: str
    domain_id: str
    password: str = field(repr=False)
    default_project_id: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    enabled: bool = True
    email: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Role:
    id: str
    name: str


def _new_id() -> str:
    return uuid.uuid4().hex


def _new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


class IdentityStore:
    """Read access to the identity file plus the one thing that changes: revocations."""

    def __init__(self, state_dir: str, data: dict[str, Any]):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, FILE_NAME)
        self._lock = threading.Lock()
        self._version = _file_version(self.path)
        self._index(data)

    # -- loading -----------------------------------------------------------

    @classmethod
    def load(cls, state_dir: str) -> IdentityStore:
        """Open an existing store; raises FileNotFoundError before ``bootstrap``."""
        path = os.path.join(state_dir, FILE_NAME)
        with open(path, encoding="utf-8") as f:
            return cls(state_dir, json.load(f))

    def _index(self, data: dict[str, Any]) -> None:
        self._data = data
        self._domains = {d["id"]: Domain(d["id"], d["name"]) for d in data["domains"]}
        self._projects = {p["id"]: Project(p["id"], p["name"], p["domain_id"],
                                           p.get("description", ""),
                                           p.get("enabled", True))
                          for p in data["projects"]}
        self._users = {u["id"]: User(u["id"], u["name"], u["domain_id"],
                                     u.get("password", ""), u.get("default_project_id"),
                                     u.get("password_hash"), u.get("enabled", True),
                                     u.get("email"), u.get("description"))
                       for u in data["users"]}
        self._roles = {r["id"]: Role(r["id"], r["name"]) for r in data["roles"]}
        self._role_ids = {r.name: r.id for r in self._roles.values()}
        self._implied: dict[str, list[str]] = data.get("implied_roles", {})
        self._assignments = [(a["user_id"], a["project_id"], a["role_id"])
                             for a in data["assignments"]]
        self._revoked = {r["audit_id"]: r["expires_at"] for r in data.get("revoked", [])}

    def refresh(self) -> None:
        """Pick up what another process (or another API worker) wrote since we last
        looked: new users and projects, grants, revocations."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        """Pick up revocations another process wrote since we last looked."""
        version = _file_version(self.path)
        if version is None or version == self._version:
            return
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        self._version = version
        self._index(data)

    # -- lookups -----------------------------------------------------------

    @property
    def signing_key(self) -> bytes:
        return bytes.fromhex(self._data["signing_key"])

    def domain(self, domain: str) -> Domain:
        """Find a domain by id or by name (clients send either)."""
        found = self._domains.get(domain)
        if found is None:
            found = next((d for d in self._domains.values() if d.name == domain), None)
        if found is None:
            raise exception.NotFound(f"Could not find domain: {domain}.")
        return found

    def domains(self) -> list[Domain]:
        return list(self._domains.values())

    def project(self, project_id: str) -> Project:
        try:
            return self._projects[project_id]
        except KeyError:
            raise exception.NotFound(f"Could not find project: {project_id}.") from None

    def project_by_name(self, name: str, domain: str = DEFAULT_DOMAIN_ID) -> Project:
        domain_id = self.domain(domain).id
        for project in self._projects.values():
            if project.name == name and project.domain_id == domain_id:
                return project
        raise exception.NotFound(f"Could not find project: {name}.")

    def projects(self) -> list[Project]:
        return list(self._projects.values())

    def user(self, user_id: str) -> User:
        try:
            return self._users[user_id]
        except KeyError:
            raise exception.NotFound(f"Could not find user: {user_id}.") from None

    def user_by_name(self, name: str, domain: str = DEFAULT_DOMAIN_ID) -> User:
        domain_id = self.domain(domain).id
        for user in self._users.values():
            if user.name == name and user.domain_id == domain_id:
                return user
        raise exception.NotFound(f"Could not find user: {name}.")

    def users(self) -> list[User]:
        return list(self._users.values())

    def role(self, role_id: str) -> Role:
        try:
            return self._roles[role_id]
        except KeyError:
            raise exception.NotFound(f"Could not find role: {role_id}.") from None

    def role_by_name(self, name: str) -> Role:
        try:
            return self._roles[self._role_ids[name]]
        except KeyError:
            raise exception.NotFound(f"Could not find role: {name}.") from None

    def roles(self) -> list[Role]:
        return list(self._roles.values())

    # -- authentication and authorisation data ------------------------------

    def authenticate_password(self, user_name: str, password: str,
                              user_domain: str = DEFAULT_DOMAIN_ID) -> User:
        """The user whose password this is; the same error whatever was wrong."""
        try:
            user = self.user_by_name(user_name, user_domain)
        except exception.NotFound:
            raise exception.NotAuthenticated() from None
        return self._check_password(user, password)

    def authenticate_user_id(self, user_id: str, password: str) -> User:
        try:
            user = self.user(user_id)
        except exception.NotFound:
            raise exception.NotAuthenticated() from None
        return self._check_password(user, password)

    @staticmethod
    def _check_password(user: User, password: str) -> User:
        if not isinstance(password, str) or not user.enabled:
            raise exception.NotAuthenticated()
        if user.password_hash is not None:
            if not passwords.matches(user.password_hash, password):
                raise exception.NotAuthenticated()
        elif not user.password or not hmac.compare_digest(
                user.password.encode(), password.encode()):
            raise exception.NotAuthenticated()
        return user

    def roles_for(self, user_id: str, project_id: str) -> list[str]:
        """Effective role names: the assigned ones and everything they imply."""
        pending = [self._roles[role_id].name for uid, pid, role_id in self._assignments
                   if uid == user_id and pid == project_id and role_id in self._roles]
        effective: set[str] = set()
        while pending:
            name = pending.pop()
            if name not in effective:
                effective.add(name)
                pending.extend(self._implied.get(name, []))
        return sorted(effective)

    def assignments(self) -> list[tuple[str, str, str]]:
        """Every direct grant as (user id, project id, role id), in the store's order."""
        return list(self._assignments)

    def projects_for(self, user_id: str) -> list[Project]:
        """Projects where the user holds any role, in the store's order."""
        ids = {pid for uid, pid, _ in self._assignments if uid == user_id}
        return [p for p in self._projects.values() if p.id in ids]

    def is_builtin(self, kind: str, name: str) -> bool:
        """The embedded cloud's own projects, users and roles: clouds.yaml, the
        services and ``bootstrap`` rely on them, so the API keeps them immutable
        (Keystone's ``immutable`` resource option)."""
        return name in {"projects": PROJECT_NAMES, "users": tuple(USER_ASSIGNMENTS),
                        "roles": ROLE_NAMES}[kind]

    # -- changes -------------------------------------------------------------

    def change(self, mutate: Callable[[dict[str, Any]], T]) -> T:
        """Apply ``mutate`` to the latest copy of the file and write it back.

        ``mutate`` sees what every other process wrote (the file is re-read under
        the cross-process lock), checks its preconditions on that and raises to
        change nothing; only a mutation that returned is written.
        """
        with self._lock, _file_lock(self.path):
            self._refresh()
            data = copy.deepcopy(self._data)
            result = mutate(data)
            _write_atomically(self.path, data)
            self._version = _file_version(self.path)
            self._index(data)
            return result

    # -- revocation ----------------------------------------------------------

    def revoke(self, audit_id: str, expires_at: float) -> None:
        """Remember a revoked token until it would have expired anyway."""
        def remember(data: dict[str, Any]) -> None:
            now = time.time()
            revoked = [r for r in data.get("revoked", []) if r["expires_at"] > now
                       and r["audit_id"] != audit_id]
            revoked.append({"audit_id": audit_id, "expires_at": expires_at})
            data["revoked"] = revoked

        self.change(remember)

    def is_revoked(self, audit_id: str) -> bool:
        with self._lock:
            self._refresh()
            return audit_id in self._revoked


def bootstrap(state_dir: str) -> IdentityStore:
    """Create the embedded cloud's identities, or complete what is already there.

    Existing entries are never regenerated, so passwords, ids and the signing
    key survive a restart; anything missing (a fresh state directory, or a user
    added in a newer transcell) is created.
    """
    statefiles.private_dir(state_dir)
    path = os.path.join(state_dir, FILE_NAME)
    with _file_lock(path):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            data = {}
        before = copy.deepcopy(data)
        _complete(data)
        if data != before:
            _write_atomically(path, data)
    return IdentityStore(state_dir, data)


def _complete(data: dict[str, Any]) -> None:
    data.setdefault("version", FORMAT_VERSION)
    data.setdefault("signing_key", secrets.token_hex(32))
    domains = data.setdefault("domains", [])
    if not any(d["id"] == DEFAULT_DOMAIN_ID for d in domains):
        domains.append({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME})

    def ensure(kind: str, name: str, **extra: Any) -> dict[str, Any]:
        items = data.setdefault(kind, [])
        for item in items:
            if item["name"] == name:
                return item
        item = {"id": _new_id(), "name": name, **extra}
        items.append(item)
        return item

    projects = {name: ensure("projects", name, domain_id=DEFAULT_DOMAIN_ID,
                             description=f"transcell {name} project")
                for name in PROJECT_NAMES}
    roles = {name: ensure("roles", name) for name in ROLE_NAMES}
    implied = data.setdefault("implied_roles", {})
    for prior, implies in IMPLIED_ROLES.items():
        implied.setdefault(prior, list(implies))

    assignments = data.setdefault("assignments", [])
    for user_name, grants in USER_ASSIGNMENTS.items():
        user = ensure("users", user_name, domain_id=DEFAULT_DOMAIN_ID,
                      password=_new_password(),
                      default_project_id=projects[grants[0][0]]["id"])
        for project_name, role_name in grants:
            grant = {"user_id": user["id"], "project_id": projects[project_name]["id"],
                     "role_id": roles[role_name]["id"]}
            if grant not in assignments:
                assignments.append(grant)
    data.setdefault("revoked", [])


def _file_version(path: str) -> tuple[int, int, int] | None:
    """What tells one written copy of the file from the next: each write renames a new
    file into place (a new inode), and two writes can share one mtime tick."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """Serialise writers across processes sharing the state directory."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_atomically(path: str, data: dict[str, Any]) -> None:
    # passwords and the token signing key: 0600, fsynced, renamed into place
    statefiles.write_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def clouds_yaml(store: IdentityStore, auth_url: str) -> dict[str, Any]:
    """The clouds.yaml content that logs the operator in as each embedded user."""
    region = _region_name()
    domain = store.domain(DEFAULT_DOMAIN_ID).name
    clouds: dict[str, Any] = {}
    for cloud, user_name, project_name in (
            ("transcell-admin", "admin", "admin"),
            ("transcell-demo", "demo", "demo"),
            ("transcell-alt", "alt", "alt"),
            ("transcell-reader", "reader", "demo"),
            ("transcell-manager", "manager", "demo")):
        user = store.user_by_name(user_name)
        clouds[cloud] = {
            "auth": {
                "auth_url": auth_url,
                "username": user.name,
                "password": user.password,
                "project_name": project_name,
                "user_domain_name": domain,
                "project_domain_name": domain,
            },
            "region_name": region,
            "identity_api_version": 3,
            "interface": "public",
        }
    return {"clouds": clouds}


def _region_name() -> str:
    return CONF.region_name
