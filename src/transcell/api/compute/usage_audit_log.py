"""``/os-instance_usage_audit_log``: the state of the usage audit of a period.

Nova's compute hosts can each record, once per audit period (a month by
default), that they emitted usage notifications for their instances; this
resource reports which hosts have done so. transcell runs no such audit, so
every compute host is reported as not having run for the period, with no
instances and no errors: the answer an operator gets from a Nova whose audit
is switched off.
"""

from __future__ import annotations

import datetime as dt

import webob

from transcell import cell as cells
from transcell import exception, policy
from transcell.wsgi.app import context_of, json_response

_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
_SHOWN = "%Y-%m-%d %H:%M:%S"


def _before(value: str) -> dt.datetime:
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise exception.Invalid(f"Invalid timestamp for date {value}")


def _period(before: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last whole month that ended at or before ``before``."""
    ending = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    beginning = (ending - dt.timedelta(days=1)).replace(day=1)
    return beginning, ending


def _report(before: dt.datetime) -> dict:
    beginning, ending = _period(before)
    hosts = sorted(host for cell in cells.list_cells(include_cell0=False)
                   for host in cells.hosts_in_cell(cell))
    return {
        "hosts_not_run": hosts, "log": {}, "num_hosts": len(hosts), "num_hosts_done": 0,
        "num_hosts_not_run": len(hosts), "num_hosts_running": 0,
        "overall_status": f"0 of {len(hosts)} hosts done. 0 errors.",
        "period_beginning": beginning.strftime(_SHOWN),
        "period_ending": ending.strftime(_SHOWN),
        "total_errors": 0, "total_instances": 0,
    }


def index(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:os-instance-usage-audit-log:list",
                     {"project_id": ctx.project_id})
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return json_response({"instance_usage_audit_logs": _report(now)})


def show(req: webob.Request, before_timestamp: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:os-instance-usage-audit-log:show",
                     {"project_id": ctx.project_id})
    return json_response({"instance_usage_audit_log": _report(_before(before_timestamp))})
