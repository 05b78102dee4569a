"""RabbitMQ vhosts and users for the distributed layout, made with ``rabbitmqctl``.

Each cell (and the API level) gets its own vhost and its own user, and that user may
use that vhost only: a compute host holding one cell's credentials cannot read or
publish on another cell's bus. Every helper is idempotent so the launcher can run it
on every start and after a crash halfway through.

``rabbitmqctl`` is used rather than the management HTTP API because the plugin is
not enabled on the hosts we deploy to and enabling it would change the broker;
``rabbitmqctl`` needs only local root (or the Erlang cookie). Passwords are given on
standard input, never on the command line, so ``ps`` does not show them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from urllib.parse import quote

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
PORT = 5672
ALL = ".*"

# URL-unreserved characters only: oslo.messaging re-quotes a password leaving "/" as is
# and puts the vhost into kombu's URL unquoted, so anything else would break the URL.
# secrets.token_urlsafe() passwords qualify.
_SAFE = re.compile(r"^[A-Za-z0-9._~-]+$")

class RabbitCtlError(RuntimeError):
    """``rabbitmqctl`` failed for a reason other than what we asked for being in place."""


def _ctl(*args: str, stdin: str | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("rabbitmqctl") or "rabbitmqctl"
    proc = subprocess.run([exe, *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise RabbitCtlError(f"rabbitmqctl {' '.join(args)} exited {proc.returncode}: "
                             f"{' '.join(detail)[:500]}")
    return proc


def _json_list(*args: str) -> list[dict]:
    out = _ctl(*args, "--quiet", "--formatter", "json").stdout.strip()
    return json.loads(out) if out else []


def list_vhosts() -> list[str]:
    return [row["name"] for row in _json_list("list_vhosts", "name")]


def list_users() -> list[str]:
    return [row["user"] for row in _json_list("list_users")]


def user_vhosts(user: str) -> list[str]:
    """The vhosts ``user`` has any permission on."""
    return [row["vhost"] for row in _json_list("list_user_permissions", user)]


def url_for(vhost: str, user: str, password: str, host: str = HOST, port: int = PORT) -> str:
    """The transport URL, each part quoted (a no-op for the names ensure_vhost allows)."""
    return (f"rabbit://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
            f"{quote(vhost, safe='')}")


def ensure_vhost(vhost: str, user: str, password: str) -> str:
    """Make ``vhost`` and ``user`` exist, ``user`` with ``password`` and full rights on
    ``vhost`` and on no other vhost; returns the rabbit:// URL for 127.0.0.1:5672.

    An existing user gets its password reset and loses permissions on any other vhost,
    so the result is the same whatever state a previous run left behind.
    """
    for what, value in (("vhost", vhost), ("user", user), ("password", password)):
        if not _SAFE.match(value or ""):
            raise ValueError(f"{what} must be non-empty and use only letters, digits "
                             "and . _ ~ -")
    # Each rabbitmqctl run boots an Erlang VM (0.5-2 s), so the common path (a new
    # vhost and user) takes three runs: add_vhost is a no-op on an existing vhost, and
    # a user that add_user just made has no other permissions to take away.
    try:
        _ctl("add_vhost", vhost)
    except RabbitCtlError:
        if vhost not in list_vhosts():
            raise
    try:
        _ctl("add_user", user, stdin=password)
    except RabbitCtlError:
        if user not in list_users():
            raise
        _ctl("change_password", user, stdin=password)
        for other in user_vhosts(user):
            if other != vhost:
                LOG.info("removing %s's permissions on vhost %s", user, other)
                _ctl("clear_permissions", "-p", other, user)
    _ctl("set_permissions", "-p", vhost, user, ALL, ALL, ALL)
    return url_for(vhost, user, password)


def delete_vhost(vhost: str) -> None:
    """Remove ``vhost`` with its queues and exchanges; nothing to do when it is absent."""
    try:
        _ctl("delete_vhost", vhost)
    except RabbitCtlError:
        # Exit codes for "absent" differ between releases; asking is reliable.
        if vhost in list_vhosts():
            raise


def delete_user(user: str) -> None:
    """Remove ``user``; nothing to do when it is absent."""
    try:
        _ctl("delete_user", user)
    except RabbitCtlError:
        if user in list_users():
            raise
