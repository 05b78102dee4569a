"""/v3/scheduler-stats/get_pools: the backends, as Cinder's scheduler reports its pools.

Each backend is one pool named by its host string; its capabilities add
the cells it reaches and its family, which decide where its volumes can go.
"""

from __future__ import annotations

import os
import shutil

import webob

from transcell.api.volume import common
from transcell.api.volume.access import authorize
from transcell.cell import list_cells
from transcell.volume import backends as vb
from transcell.wsgi.app import context_of, json_response

GIB = 1024 ** 3


def _capacity(backend: vb.Backend) -> tuple[float, float]:
    path = backend.directory()
    while not os.path.exists(path):
        path = os.path.dirname(path)
    usage = shutil.disk_usage(path)
    return round(usage.total / GIB, 2), round(usage.free / GIB, 2)


def index(req: webob.Request) -> webob.Response:
    authorize(context_of(req), "scheduler_extension:scheduler_stats:get_pools")
    detailed = common.boolean(req.GET.get("detail", "false"), "detail")
    cells = [cell.name for cell in list_cells(include_cell0=False)]
    pools = []
    for backend in vb.backends().values():
        pool: dict = {"name": backend.host}
        if detailed:
            total, free = _capacity(backend)
            pool["capabilities"] = {
                "volume_backend_name": backend.name, "storage_protocol": "file",
                "vendor_name": "transcell", "driver_version": "1.0",
                "total_capacity_gb": total, "free_capacity_gb": free,
                "reserved_percentage": 0, "QoS_support": False, "timestamp": None,
                "transcell:cells": backend.cell_names(cells),
                "transcell:family": backend.family,
            }
        pools.append(pool)
    return json_response({"pools": pools})
