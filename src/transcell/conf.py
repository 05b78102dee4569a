"""All of transcell's options, registered on one oslo.config object.

``list_opts`` feeds ``oslo-config-generator`` so the sample config stays in
step with the code (``make sample-config``).
"""

from __future__ import annotations

import os
import socket

from oslo_config import cfg

CONF = cfg.CONF

default_opts = [
    cfg.StrOpt("state_dir", default=os.path.abspath("state"), sample_default="./state",
               help="Directory holding databases, the image store, host disks and "
                    "generated files of the embedded cloud."),
    cfg.StrOpt("bind_host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("bind_port", default=8774, help="Port the API listens on."),
    cfg.StrOpt("host", default=socket.gethostname(), sample_default="<this machine's name>",
               help="Name of this service's host, as the services list shows it."),
    cfg.StrOpt("region_name", default="RegionOne", help="Region in the service catalog."),
    cfg.URIOpt("public_endpoint", schemes=["http", "https"],
               help="Scheme, host and port clients reach the APIs at (e.g. "
                    "https://cloud.example.com), used in the service catalog and in every "
                    "link. Default: http://bind_host:bind_port of the running cloud. The "
                    "request's Host header is never used."),
]

api_database_opts = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the API database. Default: SQLite in state_dir."),
]

embedded_opts = [
    cfg.IntOpt("cells", default=2, min=1, help="Number of cells the embedded cloud creates."),
    cfg.IntOpt("hosts_per_cell", default=2, min=1, help="Compute hosts per cell."),
    cfg.StrOpt("cell_database_template", secret=True,
               help="URL template for cell databases, with {name} for the cell name "
                    "(e.g. postgresql://u@h/transcell_{name}). Default: SQLite files."),
]

placement_opts = [
    cfg.StrOpt("url", help="URL of an external Placement service. When unset, the real "
                           "openstack-placement package is mounted in-process at /placement."),
    cfg.StrOpt("database_connection", secret=True,
               help="Database of the in-process Placement. Default: SQLite in state_dir."),
    cfg.StrOpt("auth_token", default="admin:admin",
               help="Token sent to an external Placement running with noauth2."),
    cfg.StrOpt("bind_host", default="127.0.0.1",
               help="Address `transcell placement` (Placement as its own process) "
                    "listens on."),
    cfg.PortOpt("bind_port", default=8778,
                help="Port `transcell placement` listens on (0: any free port)."),
]

image_opts = [
    cfg.URIOpt("api_url", schemes=["http", "https"],
               help="Image API root (e.g. http://host:9292/image) that compute hosts and "
                    "conductors reach over HTTP with the service user's token: the only "
                    "data path between cells. When unset, the store is in this process."),
    cfg.StrOpt("store_dir", help="Root of the content-addressed chunk store. "
                                 "Default: state_dir/images."),
    cfg.IntOpt("chunk_size", default=4 * 1024 * 1024, min=4096,
               help="Size in bytes of the fixed chunks images are split into."),
    cfg.StrOpt("database_connection", secret=True,
               help="SQLAlchemy URL of the image service's database (metadata definition "
                    "namespaces, objects, properties, tags, resource types). Default: "
                    "SQLite in state_dir."),
]

compute_opts = [
    cfg.IntOpt("reclaim_instance_interval", default=0, min=0,
               help="Seconds a deleted server is kept soft-deleted (restorable with "
                    "the restore action, gone at once with forceDelete) before it is "
                    "reclaimed. 0: a delete is final at once."),
    cfg.IntOpt("shelved_offload_time", default=0, min=-1,
               help="Seconds a shelved server keeps its host before it is offloaded "
                    "(its disk kept only as a snapshot in the image store, its host "
                    "freed). 0: offload at once; -1: never on its own."),
    cfg.StrOpt("virt_driver", default="fake", choices=["fake"],
               help="Virt driver of the compute host agents."),
    cfg.StrOpt("disk_format", default="qcow2", choices=["qcow2", "raw"],
               help="Format of instance root disks: a qcow2 overlay on the cached "
                    "image or a sparse raw copy."),
    cfg.IntOpt("vcpus", default=16, help="vCPUs each fake host reports."),
    cfg.IntOpt("memory_mb", default=32768, help="Memory (MB) each fake host reports."),
    cfg.IntOpt("disk_gb", default=500, help="Disk (GB) each fake host reports."),
    cfg.FloatOpt("cpu_allocation_ratio", default=4.0,
                 help="Virtual CPUs Placement may allocate per physical CPU."),
    cfg.FloatOpt("ram_allocation_ratio", default=1.0,
                 help="Memory Placement may allocate per MB of host memory."),
    cfg.FloatOpt("disk_allocation_ratio", default=1.0,
                 help="Disk Placement may allocate per GB of host disk."),
    cfg.IntOpt("service_down_time", default=60,
               help="Seconds without a heartbeat after which a service counts as down."),
    cfg.IntOpt("report_interval", default=10, help="Seconds between service heartbeats."),
]

scheduler_opts = [
    cfg.IntOpt("max_attempts", default=3, min=1,
               help="Hosts tried for one build: the chosen host plus alternates."),
    cfg.IntOpt("max_placement_results", default=1000, min=1,
               help="Allocation candidates asked of Placement per request."),
    cfg.FloatOpt("cross_cell_move_weight_multiplier", default=1000000.0,
                 help="How strongly a move that may cross cells prefers hosts of the "
                      "server's current cell. The default outweighs every other weigher, "
                      "so a move leaves its cell only when no host there fits; a negative "
                      "value prefers other cells (to drain a cell). A host's aggregates "
                      "may override it with the metadata key of the same name (the "
                      "smallest value wins)."),
]

identity_opts = [
    cfg.IntOpt("token_expiration", default=3600, min=1, help="Token lifetime in seconds."),
    cfg.StrOpt("auth_strategy", default="builtin", choices=["builtin", "keystone"],
               help="builtin: transcell issues and checks its own tokens; keystone: "
                    "keystonemiddleware validates tokens against a real Keystone."),
]

rpc_opts = [
    cfg.StrOpt("transport_url", default="inproc://api",
               help="Bus of the API-level services (conductor, scheduler)."),
    cfg.IntOpt("rpc_response_timeout", default=60, min=1,
               help="Seconds an RPC call waits for its reply."),
    cfg.IntOpt("long_rpc_timeout", default=1800, min=1,
               help="Seconds a call that moves disk data (snapshot upload, rebuild at the "
                    "target) waits for its reply."),
    cfg.IntOpt("call_monitor_timeout", default=30, min=2,
               help="Seconds a long call (see long_rpc_timeout) waits without a heartbeat "
                    "from the host working on it before it fails: a host that died "
                    "mid-call is noticed this soon, while a host still working keeps "
                    "the call alive up to long_rpc_timeout."),
]

conductor_opts = [
    cfg.IntOpt("resize_confirm_window", default=0, min=0,
               help="Seconds after which a move waiting in VERIFY_RESIZE is confirmed "
                    "by the conductor; 0 never confirms automatically."),
    cfg.IntOpt("move_check_interval", default=10, min=1,
               help="Seconds between the conductor's passes over unfinished moves "
                    "(resume, auto-confirm)."),
    cfg.IntOpt("move_lease_seconds", default=30, min=1,
               help="Seconds a conductor holds a move it works on without renewing its "
                    "lease (it renews every third of that while a step runs). A move "
                    "whose lease ran out, because its conductor died or froze, is taken "
                    "over by another conductor; the first then can no longer write it."),
    cfg.IntOpt("precopy_max_rounds", default=5, min=0,
               help="Rounds a move copies a running guest's disk before it stops the "
                    "guest (the first sends what changed since the image, each later one "
                    "what the guest wrote meanwhile); 0 copies only once the guest has "
                    "stopped."),
    cfg.IntOpt("precopy_stop_mib", default=16, min=0,
               help="Pre-copy stops once the chunks the guest wrote to since the last "
                    "round hold no more than this many MiB (or once that stops "
                    "shrinking): they are sent after the stop, and are most of the "
                    "downtime."),
    cfg.IntOpt("move_undo_attempts", default=5, min=1,
               help="Times a failed move's compensation is retried before the move is "
                    "marked failed for an operator to look at."),
]

quota_opts = [
    cfg.IntOpt("instances", default=20, help="Servers per project (-1 = unlimited)."),
    cfg.IntOpt("cores", default=40, help="vCPUs per project (-1 = unlimited)."),
    cfg.IntOpt("ram", default=100 * 1024, help="Memory (MB) per project (-1 = unlimited)."),
    cfg.IntOpt("key_pairs", default=100, help="Key pairs per user (-1 = unlimited)."),
    cfg.IntOpt("metadata_items", default=128,
               help="Metadata items per server (-1 = unlimited)."),
    cfg.IntOpt("server_groups", default=10,
               help="Server groups per project (-1 = unlimited)."),
    cfg.IntOpt("server_group_members", default=10,
               help="Servers per server group (-1 = unlimited)."),
    cfg.IntOpt("injected_files", default=5,
               help="Personality files per server (-1 = unlimited)."),
    cfg.IntOpt("injected_file_content_bytes", default=10240,
               help="Bytes of one personality file's content (-1 = unlimited)."),
    cfg.IntOpt("injected_file_path_length", default=255,
               help="Characters of one personality file's path (-1 = unlimited)."),
]

network_opts = [
    cfg.URIOpt("api_url", schemes=["http", "https"],
               help="Network API root (e.g. http://host:9696/network) that compute hosts "
                    "and conductors reach over HTTP with the service user's token. When "
                    "unset, the network service runs in this process."),
    cfg.StrOpt("database_connection", secret=True,
               help="SQLAlchemy URL of the network service's database (networks, "
                    "subnets, ports, bindings). Default: SQLite in state_dir."),
    cfg.BoolOpt("readdress_on_move", default=False,
                help="When a server moves to a cell that none of a port's network "
                     "segments reaches, give the port (same id, same MAC) a fixed IP on a "
                     "segment of the target cell instead of refusing the move. A move "
                     "request may ask for this too (see the README)."),
]

volume_opts = [
    cfg.URIOpt("api_url", schemes=["http", "https"],
               help="Block storage API root (e.g. http://host:8776/volume) that compute "
                    "hosts and conductors reach over HTTP with the service user's token. "
                    "When unset, the volume service runs in this process."),
    cfg.StrOpt("database_connection", secret=True,
               help="SQLAlchemy URL of the volume service's database (volumes, "
                    "attachments, copies). Default: SQLite in state_dir."),
    cfg.StrOpt("data_dir", help="Directory under which each backend keeps its volume "
                                "files (one sparse raw file per volume). Default: "
                                "state_dir/volumes."),
    cfg.ListOpt("backends", default=["shared:*:shared", "local-cell1:cell1:local",
                                     "local-cell2:cell2:local"],
                help="Storage backends as NAME:CELLS:FAMILY, CELLS being the cells whose "
                     "hosts reach the backend, separated by '+' ('*': every cell). A "
                     "server moving to a cell its volume's backend does not reach has the "
                     "volume migrated to a backend of the same FAMILY that the target "
                     "cell reaches."),
    cfg.ListOpt("volume_types", default=["shared:shared", "local-cell1:local-cell1",
                                         "local-cell2:local-cell2"],
                help="Volume types as TYPE:BACKEND."),
    cfg.StrOpt("default_volume_type", default="shared",
               help="Volume type of a volume created without one."),
    cfg.DictOpt("move_backend_map", default={},
                help="Operator's choice of target backend when a move must migrate a "
                     "volume, as SOURCE_BACKEND@TARGET_CELL:TARGET_BACKEND pairs; it "
                     "overrides the same-family rule."),
]

wsgi_opts = [
    cfg.IntOpt("threads", default=16, min=1,
               help="Worker threads running API requests. Connections are read and "
                    "written by one I/O loop, so slow clients hold no worker; a request "
                    "reaches a worker only once its headers and body have arrived."),
    cfg.IntOpt("connection_limit", default=16384, min=16,
               help="Open client connections the API accepts at once; past it new "
                    "connections wait in the listen backlog. Capped below the process's "
                    "open-file limit."),
    cfg.IntOpt("client_socket_timeout", default=60, min=1,
               help="Seconds a client connection may stay silent (no bytes received or "
                    "sent) before the server closes it, between requests as well as "
                    "inside one."),
    cfg.IntOpt("header_timeout", default=30, min=1,
               help="Seconds a client has, from the first byte of a request, to send "
                    "all of its headers; a client trickling headers is closed after it."),
    cfg.IntOpt("max_header_size", default=64 * 1024, min=1024,
               help="Largest request line plus headers, in bytes (431/400 beyond)."),
    cfg.IntOpt("max_request_body_size", default=1024 * 1024, min=1024,
               help="Largest request body of the JSON APIs, in bytes; larger bodies get "
                    "413 in the API's error envelope and change nothing. Image data "
                    "uploads are exempt and bounded by max_upload_size."),
    cfg.IntOpt("max_upload_size", default=64 * 1024 ** 3, min=1024 * 1024,
               help="Largest request body of any kind (image data uploads), in bytes."),
    cfg.IntOpt("shutdown_timeout", default=5, min=1,
               help="Seconds requests already running may take to finish once the "
                    "server is asked to stop."),
]

cell_opts = [
    cfg.StrOpt("name", help="Name of the cell this service belongs to (compute hosts and "
                            "cell conductors of a distributed deployment). Such a service "
                            "reaches only this cell's database and bus, never the API "
                            "database."),
    cfg.StrOpt("uuid", help="UUID of that cell, as its cell mapping records it."),
    cfg.StrOpt("database_connection", secret=True,
               help="SQLAlchemy URL of that cell's database, with the cell's own "
                    "credentials."),
    cfg.StrOpt("transport_url", secret=True,
               help="Bus of that cell (rabbit://user:password@host:port/vhost), with the "
                    "cell's own broker credentials."),
]

api_opts = [
    cfg.URIOpt("identity_backend", schemes=["http", "https"],
               help="Keystone's own URL. When set, the API passes requests under "
                    "/identity through to it, so clients find every service under one "
                    "endpoint as in the embedded layout."),
    cfg.URIOpt("placement_backend", schemes=["http", "https"],
               help="Placement's own URL, passed through under /placement likewise."),
    cfg.BoolOpt("enable_instance_password", default=True,
                help="Return the administrator password a rescue sets (rescue's "
                     "adminPass), as Nova's option of the same name does."),
    cfg.BoolOpt("list_parallel_cells", default=None,
                help="Read every cell at once when listing servers (each cell returns "
                     "one sorted page, merged by the sort keys), or, false, one after "
                     "the other. Unset (the default), cells are read at once only when "
                     "one of them is a database across a network, where a read is mostly "
                     "waiting on round trips, and one after the other when every cell "
                     "is a local SQLite file: turning those rows into Python values "
                     "holds the interpreter lock, so threads add switching and buy "
                     "nothing (on two cores they cost up to two thirds more CPU)."),
]

audit_opts = [
    cfg.IntOpt("stale_task_seconds", default=600, min=1,
               help="Seconds after which a server still in a task state that no move "
                    "owns (powering-off, deleting, spawning, ...) is reported by "
                    "`transcell audit` as stale, and after which a mapping queued for "
                    "delete whose server is still live is reported."),
    cfg.IntOpt("fix_grace_seconds", default=60, min=0,
               help="`transcell audit --fix` leaves alone a server row written more "
                    "recently than this: the request that wrote it may still be on its "
                    "way (between an API's write and the conductor's)."),
]

GROUPS = {
    None: default_opts,
    "api_database": api_database_opts,
    "embedded": embedded_opts,
    "placement": placement_opts,
    "image": image_opts,
    "compute": compute_opts,
    "scheduler": scheduler_opts,
    "identity": identity_opts,
    "rpc": rpc_opts,
    "conductor": conductor_opts,
    "quota": quota_opts,
    "network": network_opts,
    "volume": volume_opts,
    "audit": audit_opts,
    "wsgi": wsgi_opts,
    "cell": cell_opts,
    "api": api_opts,
}


def register(conf: cfg.ConfigOpts = CONF) -> cfg.ConfigOpts:
    for group, opts in GROUPS.items():
        conf.register_opts(opts, group=group)
    return conf


def list_opts():
    return [(group, opts) for group, opts in GROUPS.items()]


register()


def state_path(*parts: str) -> str:
    return os.path.join(CONF.state_dir, *parts)


def api_database_url() -> str:
    return CONF.api_database.connection or f"sqlite:///{state_path('api.sqlite')}"


def cell_database_url(name: str) -> str:
    if CONF.embedded.cell_database_template:
        return CONF.embedded.cell_database_template.format(name=name)
    return f"sqlite:///{state_path(name + '.sqlite')}"


def image_store_dir() -> str:
    return CONF.image.store_dir or state_path("images")


def image_database_url() -> str:
    return CONF.image.database_connection or f"sqlite:///{state_path('image.sqlite')}"


def network_database_url() -> str:
    return CONF.network.database_connection or f"sqlite:///{state_path('network.sqlite')}"


def volume_database_url() -> str:
    return CONF.volume.database_connection or f"sqlite:///{state_path('volume.sqlite')}"


def volume_data_dir() -> str:
    return CONF.volume.data_dir or state_path("volumes")
