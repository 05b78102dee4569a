"""``/extensions``: the extension list Nova still answers with for old clients.

Since 2.1 the API is versioned by microversions, and Nova returns a fixed list
of the extension names its v2 API once had, whatever is enabled. transcell
answers with the same kind of list (name and alias of each), so clients that
probe ``/extensions`` before calling an API find what they look for.
"""

from __future__ import annotations

import webob

from transcell import exception, policy
from transcell.wsgi.app import context_of, json_response

_UPDATED = "2014-12-03T00:00:00Z"

#: (name, alias) of Nova's v2.1 extension list.
EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("AccessIPs", "os-access-ips"), ("AdminActions", "os-admin-actions"),
    ("AdminPassword", "os-admin-password"), ("Agents", "os-agents"),
    ("Aggregates", "os-aggregates"), ("AssistedVolumeSnapshots", "os-assisted-volume-snapshots"),
    ("AttachInterfaces", "os-attach-interfaces"), ("AvailabilityZone", "os-availability-zone"),
    ("BareMetalNodes", "os-baremetal-nodes"), ("BlockDeviceMapping", "os-block-device-mapping"),
    ("Cells", "os-cells"), ("Certificates", "os-certificates"), ("Cloudpipe", "os-cloudpipe"),
    ("ConfigDrive", "os-config-drive"), ("ConsoleAuthTokens", "os-console-auth-tokens"),
    ("ConsoleOutput", "os-console-output"), ("Consoles", "os-consoles"),
    ("CreateBackup", "os-create-backup"), ("Createserverext", "os-create-server-ext"),
    ("DeferredDelete", "os-deferred-delete"), ("DiskConfig", "os-disk-config"),
    ("EvacuateFindHost", "os-evacuate"), ("ExtendedAvailabilityZone",
                                          "OS-EXT-AZ"),
    ("ExtendedIps", "OS-EXT-IPS"), ("ExtendedIpsMac", "OS-EXT-IPS-MAC"),
    ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR"), ("ExtendedStatus", "OS-EXT-STS"),
    ("ExtendedVolumes", "os-extended-volumes"), ("FixedIPs", "os-fixed-ips"),
    ("FlavorAccess", "os-flavor-access"), ("FlavorExtraData", "OS-FLV-EXT-DATA"),
    ("FlavorExtraSpecs", "os-flavor-extra-specs"), ("FlavorManage", "os-flavor-manage"),
    ("FlavorRxtx", "os-flavor-rxtx"), ("Flavors", "flavors"),
    ("FloatingIpDns", "os-floating-ip-dns"), ("FloatingIpPools", "os-floating-ip-pools"),
    ("FloatingIps", "os-floating-ips"), ("Fping", "os-fping"), ("Hosts", "os-hosts"),
    ("Hypervisors", "os-hypervisors"), ("ImageMetadata", "image-metadata"),
    ("ImageSize", "OS-EXT-IMG-SIZE"), ("Images", "images"),
    ("InstanceActions", "os-instance-actions"),
    ("InstanceUsageAuditLog", "os-instance-usage-audit-log"), ("Keypairs", "os-keypairs"),
    ("Limits", "limits"), ("LockServer", "os-lock-server"), ("MigrateServer", "os-migrate-server"),
    ("Migrations", "os-migrations"), ("MultipleCreate", "os-multiple-create"),
    ("Networks", "os-networks"), ("NetworksAssociate", "os-networks-associate"),
    ("PauseServer", "os-pause-server"), ("PreserveEphemeralOnRebuild",
                                         "os-preserve-ephemeral-rebuild"),
    ("QuotaClasses", "os-quota-class-sets"), ("Quotas", "os-quota-sets"),
    ("Rescue", "os-rescue"), ("SchedulerHints", "os-scheduler-hints"),
    ("SecurityGroupDefaultRules", "os-security-group-default-rules"),
    ("SecurityGroups", "os-security-groups"), ("ServerDiagnostics", "os-server-diagnostics"),
    ("ServerExternalEvents", "os-server-external-events"),
    ("ServerGroups", "os-server-groups"), ("ServerListMultiStatus",
                                           "os-server-list-multi-status"),
    ("ServerMetadata", "server-metadata"), ("ServerPassword", "os-server-password"),
    ("ServerSortKeys", "os-server-sort-keys"), ("ServerStartStop", "os-server-start-stop"),
    ("ServerUsage", "OS-SRV-USG"), ("Servers", "servers"), ("Services", "os-services"),
    ("Shelve", "os-shelve"), ("SimpleTenantUsage", "os-simple-tenant-usage"),
    ("SuspendServer", "os-suspend-server"), ("TenantNetworks", "os-tenant-networks"),
    ("UsedLimits", "os-used-limits"), ("UserData", "os-user-data"),
    ("Versions", "versions"), ("VirtualInterfaces", "os-virtual-interfaces"),
    ("Volumes", "os-volumes"),
)


def _view(name: str, alias: str) -> dict:
    return {"name": name, "alias": alias, "description": f"{name} support.",
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
            "updated": _UPDATED, "links": []}


def index(req: webob.Request) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:extensions", {"project_id": ctx.project_id})
    return json_response({"extensions": [_view(n, a) for n, a in EXTENSIONS]})


def show(req: webob.Request, alias: str) -> webob.Response:
    ctx = context_of(req)
    policy.authorize(ctx, "os_compute_api:extensions", {"project_id": ctx.project_id})
    for name, known in EXTENSIONS:
        if known == alias:
            return json_response({"extension": _view(name, alias)})
    raise exception.NotFound("The resource could not be found.")
