"""The service user's Keystone credentials, as a keystoneauth session.

A service process of the distributed layout reaches Placement, the image and the
network services over HTTP with a token of its own service user, never by
importing them. The credentials live in ``[service_auth]`` of the service's
config file, in keystoneauth's own option format (``auth_type = password``,
``auth_url``, ``username``, ``password``, ``project_name``, ``user_domain_name``,
``project_domain_name``, plus the session's ``cafile``, ``insecure``, ``timeout``),
so any auth plugin keystoneauth knows works without code here.

One session per configuration is shared by every client of the process: its auth
plugin caches the token and fetches a new one before it expires.
"""

from __future__ import annotations

import threading

from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg

from transcell.conf import CONF

GROUP = "service_auth"

_lock = threading.Lock()
_sessions: dict[int, ks_session.Session] = {}


class NotConfigured(RuntimeError):
    """``[service_auth]`` names no auth plugin."""


def register_opts(conf: cfg.ConfigOpts = CONF) -> None:
    """Register the plugin choice and the session options; the chosen plugin's own
    options (``auth_url``, ``username``, ...) are registered when it is loaded."""
    ks_loading.register_auth_conf_options(conf, GROUP)
    ks_loading.register_session_conf_options(conf, GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For the sample config: the session options and those of the password plugin."""
    opts = (ks_loading.get_session_conf_options()
            + ks_loading.get_auth_common_conf_options()
            + ks_loading.get_auth_plugin_conf_options("password"))
    return [(GROUP, opts)]


def configured(conf: cfg.ConfigOpts = CONF) -> bool:
    register_opts(conf)
    return bool(conf[GROUP].auth_type)


def session(conf: cfg.ConfigOpts = CONF) -> ks_session.Session:
    """The shared keystoneauth session of this process's service user."""
    with _lock:
        found = _sessions.get(id(conf))
        if found is not None:
            return found
        register_opts(conf)
        auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
        if auth is None:
            raise NotConfigured(f"[{GROUP}] auth_type is not set: the service user's "
                                "credentials are needed to reach other services")
        made = ks_loading.load_session_from_conf_options(conf, GROUP, auth=auth)
        _sessions[id(conf)] = made
        return made


def reset() -> None:
    """Forget the shared sessions (after the configuration changed, in tests)."""
    with _lock:
        _sessions.clear()


register_opts()


def send_json(session: ks_session.Session, service: str, endpoint: str, ctx,
              method: str, path: str, *, body=None, params=None,
              headers: dict[str, str] | None = None, unavailable: type[Exception],
              ) -> tuple[int, dict | list | None, object]:
    """One JSON request of a service's HTTP client, as the service user.

    The caller's request id travels as the global request id, so one user
    request can be followed through every service's log; a service that
    cannot be reached raises ``unavailable`` (the client's own error).
    Returns the status, the decoded body (None when empty or not JSON) and
    the response, for the client to turn errors into its own exceptions.
    """
    from keystoneauth1 import exceptions as ks_exc

    from transcell import tally

    kwargs: dict = {"raise_exc": False,
                    "headers": {"Accept": "application/json", **(headers or {})}}
    if body is not None:
        kwargs["json"] = body
    if params:
        kwargs["params"] = params
    if ctx.request_id:
        kwargs["global_request_id"] = ctx.request_id
    if tally.ENABLED:
        tally.request(service, method, path)
    try:
        resp = session.request(f"{endpoint}{path}", method, **kwargs)
    except (ks_exc.ConnectionError, ks_exc.SSLError) as err:
        raise unavailable(endpoint=endpoint, reason=str(err)) from err
    data = None
    if resp.content and resp.status_code != 204:
        try:
            data = resp.json()
        except ValueError:
            data = None
    return resp.status_code, data, resp
