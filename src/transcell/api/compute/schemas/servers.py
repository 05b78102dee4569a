"""Server request bodies."""

from __future__ import annotations

from transcell.api.compute.microversion import APIVersion

#: Printable characters, no leading or trailing space (the "name" format of
#: compute.common.validate, as Nova's name rule): control characters, line
#: separators and NUL would end up in logs, consoles and guest hostnames.
NAME = {"type": "string", "minLength": 1, "maxLength": 255, "format": "name"}
#: Free text: printable characters, spaces anywhere.
DESCRIPTION = {"type": ["string", "null"], "maxLength": 255, "format": "printable"}
UUID_OR_EMPTY = {"type": "string", "maxLength": 255}
#: Any character but a comma, a slash or a C0/C1 control character or line separator (``\Z``, since
#: ``$`` would let a final newline through).
TAG = {"type": "string", "minLength": 1, "maxLength": 60,
       "pattern": "^[^,/\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*\\Z"}
#: Metadata keys and values: printable text of at most 255 characters.
METADATA = {"type": "object",
            "patternProperties": {"^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]{1,255}\\Z": {
                "type": "string", "maxLength": 255, "format": "printable"}},
            "additionalProperties": False}
#: 2.63: ids of certificates the image's signature must chain to (at most 50, no repeats).
TRUSTED_CERTS = {"type": ["array", "null"], "minItems": 1, "maxItems": 50, "uniqueItems": True,
                 "items": {"type": "string", "minLength": 1}}
#: 2.67: the Cinder volume type of a volume a mapping creates.
VOLUME_TYPE = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
#: 2.74: a compute host or hypervisor name, as Nova accepts one (underscores included).
HOST = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[a-zA-Z0-9-._]*$"}
#: 2.90: the hostname a guest is told (metadata service, config drive): one DNS label
#: of 2 to 63 letters, digits and inner hyphens, as Nova accepts it (FQDNs came later).
HOSTNAME = {"type": "string", "minLength": 2, "maxLength": 63,
            "pattern": "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"}

_NETWORK = {
    "type": "object",
    "properties": {"fixed_ip": {"type": "string"}, "port": {"type": ["string", "null"]},
                   "uuid": {"type": "string"}},
    "additionalProperties": False,
}

_BDM_V2 = {
    "type": "object",
    "properties": {
        "uuid": {"type": "string"}, "source_type": {"enum": ["image", "volume", "snapshot",
                                                              "blank"]},
        "destination_type": {"enum": ["local", "volume"]},
        "boot_index": {"type": ["integer", "string", "null"]},
        "delete_on_termination": {"type": ["boolean", "string"]},
        "volume_size": {"type": ["integer", "string", "null"]},
        "device_name": {"type": ["string", "null"]}, "device_type": {"type": ["string", "null"]},
        "disk_bus": {"type": ["string", "null"]}, "guest_format": {"type": ["string", "null"]},
        "no_device": {}, "tag": TAG,
    },
    "additionalProperties": False,
}


def create(version: APIVersion) -> dict:
    network = {**_NETWORK, "properties": dict(_NETWORK["properties"])}
    bdm = {**_BDM_V2, "properties": dict(_BDM_V2["properties"])}
    if not version.matches("2.32"):
        bdm["properties"].pop("tag")
    if version.matches("2.67"):
        bdm["properties"]["volume_type"] = VOLUME_TYPE
    else:
        network["properties"]["tag"] = TAG
    if not version.matches("2.42") and version.matches("2.33"):
        network["properties"]["tag"] = TAG
    networks: dict = {"type": "array", "items": network}
    if version.matches("2.37"):
        networks = {"oneOf": [networks, {"enum": ["auto", "none"]}]}
    server = {
        "type": "object",
        "properties": {
            "name": NAME,
            "imageRef": UUID_OR_EMPTY,
            "flavorRef": {"type": ["string", "integer"], "minLength": 1},
            "adminPass": {"type": "string"},
            "metadata": METADATA,
            "networks": networks,
            "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]},
            "accessIPv4": {"type": "string", "format": "ipv4"},
            "accessIPv6": {"type": "string", "format": "ipv6"},
            "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
            "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
            "block_device_mapping_v2": {"type": "array", "items": bdm},
            "config_drive": {"type": ["boolean", "string"]},
            "min_count": {"type": ["integer", "string"], "minimum": 1},
            "max_count": {"type": ["integer", "string"], "minimum": 1},
            "return_reservation_id": {"type": ["boolean", "string"]},
            "security_groups": {"type": "array",
                                "items": {"type": "object",
                                          "properties": {"name": {"type": "string"}}}},
            "user_data": {"type": "string"},
            "personality": {"type": "array"},
        },
        "required": ["name", "flavorRef"],
        "additionalProperties": False,
    }
    if version.matches("2.19"):
        server["properties"]["description"] = DESCRIPTION
    if version.matches("2.37"):
        server["required"] = ["name", "flavorRef", "networks"]
    if version.matches("2.52"):
        server["properties"]["tags"] = {"type": "array", "items": TAG, "maxItems": 50}
    if version.matches("2.57"):
        # file injection is gone; user_data is the way to hand a guest files
        server["properties"].pop("personality")
    if version.matches("2.63"):
        server["properties"]["trusted_image_certificates"] = TRUSTED_CERTS
    if version.matches("2.74"):
        server["properties"]["host"] = HOST
        server["properties"]["hypervisor_hostname"] = HOST
    if version.matches("2.90"):
        server["properties"]["hostname"] = HOSTNAME
    return {
        "type": "object",
        "properties": {"server": server, "os:scheduler_hints": {"type": "object"},
                       "OS-SCH-HNT:scheduler_hints": {"type": "object"}},
        "required": ["server"],
        "additionalProperties": False,
    }


def update(version: APIVersion) -> dict:
    props = {"name": NAME, "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"},
             "OS-DCF:diskConfig": {"enum": ["AUTO", "MANUAL"]}}
    if version.matches("2.19"):
        props["description"] = DESCRIPTION
    if version.matches("2.90"):
        props["hostname"] = HOSTNAME
    return {
        "type": "object",
        "properties": {"server": {"type": "object", "properties": props,
                                  "additionalProperties": False}},
        "required": ["server"],
        "additionalProperties": False,
    }
