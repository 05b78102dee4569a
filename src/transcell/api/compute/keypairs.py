"""/os-keypairs: a user's SSH keys (and x509 certificates), in the API database.

Keypairs belong to a user, not a project, and are global: a server carries
a copy of its key, so a move to another cell needs nothing from here.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import string
from typing import Any

import webob
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from transcell import exception, policy, quota
from transcell.api.compute import common
from transcell.api.compute.app import api_version
from transcell.db import api_models as am
from transcell.db.session import api_session
from transcell.db.types import isotime, utcnow
from transcell.wsgi.app import context_of, empty_response, json_response, read_json

SSH = "ssh"
X509 = "x509"

_SAFE_NAME_CHARS = frozenset("_- " + string.digits + string.ascii_letters)

_KEYPAIR_21 = {"name": common.NAME, "public_key": {"type": "string"}}
_KEYPAIR_22 = dict(_KEYPAIR_21, type={"type": "string", "enum": [SSH, X509]})
_KEYPAIR_210 = dict(_KEYPAIR_22, user_id={"type": "string"})


def _create_schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object",
            "properties": {"keypair": {"type": "object", "properties": properties,
                                       "required": ["name"], "additionalProperties": False}},
            "required": ["keypair"], "additionalProperties": False}


CREATE_SCHEMA_21 = _create_schema(_KEYPAIR_21)
CREATE_SCHEMA_22 = _create_schema(_KEYPAIR_22)
CREATE_SCHEMA_210 = _create_schema(_KEYPAIR_210)


class InvalidKeypair(exception.Invalid):
    msg_fmt = "Keypair data is invalid: %(reason)s"


# -- key material ----------------------------------------------------------------

def _colon_hex(digest: bytes) -> str:
    text = binascii.hexlify(digest).decode("ascii")
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def ssh_fingerprint(public_key: str) -> str:
    """MD5 of the key blob, colon-separated: what ``ssh-keygen -l -E md5`` prints."""
    try:
        serialization.load_ssh_public_key(public_key.strip().encode("utf-8"))
        blob = base64.b64decode(public_key.strip().split()[1])
    except Exception:  # any parse failure means the same thing to the user
        raise InvalidKeypair(reason="failed to generate fingerprint") from None
    return _colon_hex(hashlib.md5(blob, usedforsecurity=False).digest())


def x509_fingerprint(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise InvalidKeypair(reason="failed to generate X509 fingerprint. Error message: "
                                    f"{exc}") from None
    return _colon_hex(cert.fingerprint(hashes.SHA1()))


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode("ascii")


def generate_ssh() -> tuple[str, str, str]:
    """(public key in OpenSSH format, private key PEM, fingerprint) of a new RSA key."""
    key = _new_rsa_key()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    public = f"{public} Generated-by-transcell"
    return public, _private_pem(key), ssh_fingerprint(public)


def generate_x509(user_id: str) -> tuple[str, str, str]:
    """(self-signed certificate PEM, private key PEM, fingerprint) for WinRM-style logins."""
    key = _new_rsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "transcell")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return pem, _private_pem(key), x509_fingerprint(pem)


# -- views --------------------------------------------------------------------------

def _summary(row: am.KeyPair, with_type: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": row.name, "public_key": row.public_key,
                            "fingerprint": row.fingerprint}
    if with_type:
        body["type"] = row.type
    return body


def _user_id(req: webob.Request) -> str:
    """The caller's own user, or from 2.10 the ``user_id`` an administrator names."""
    ctx = context_of(req)
    if api_version(req).matches("2.10") and "user_id" in req.GET:
        return req.GET.getall("user_id")[0]
    return ctx.user_id


def _authorize(req: webob.Request, action: str, user_id: str) -> None:
    ctx = context_of(req)
    policy.authorize(ctx, f"os_compute_api:os-keypairs:{action}",
                     {"user_id": user_id, "project_id": ctx.project_id})


def _get(user_id: str, name: str) -> am.KeyPair:
    with api_session() as s:
        row = s.scalar(select(am.KeyPair).where(am.KeyPair.user_id == user_id,
                                                am.KeyPair.name == name))
    if row is None:
        raise exception.KeypairNotFound(name=name, user_id=user_id)
    return row


# -- handlers -----------------------------------------------------------------------

def index(req: webob.Request) -> webob.Response:
    version = api_version(req)
    user_id = _user_id(req)
    _authorize(req, "index", user_id)
    query = select(am.KeyPair).where(am.KeyPair.user_id == user_id).order_by(am.KeyPair.name)
    with api_session() as s:
        rows = list(s.scalars(query))
    paged = version.matches("2.35")
    if paged:
        limit, marker = common.limit_and_marker(req)
        if marker is not None and marker not in {r.name for r in rows}:
            raise exception.Invalid(f"Marker {marker} could not be found.")
        rows = common.page_after(rows, lambda r: r.name, marker, limit)
    items = [_summary(r, version.matches("2.2")) for r in rows]
    body: dict[str, Any] = {"keypairs": [{"keypair": item} for item in items]}
    if paged:
        links = common.collection_links(req, items, "os-keypairs", "name")
        if links:
            body["keypairs_links"] = links
    return json_response(body)


def _check_name(name: str) -> None:
    if any(c not in _SAFE_NAME_CHARS for c in name):
        raise InvalidKeypair(reason="Keypair name contains unsafe characters")
    if not 1 <= len(name) <= 255:
        raise InvalidKeypair(reason="Keypair name must be string and between 1 and 255 "
                                    "characters long")


def create(req: webob.Request) -> webob.Response:
    version = api_version(req)
    body = read_json(req)
    if version.matches("2.10"):
        common.validate(CREATE_SCHEMA_210, body)
    elif version.matches("2.2"):
        common.validate(CREATE_SCHEMA_22, body)
    else:
        common.validate(CREATE_SCHEMA_21, body)
    ctx = context_of(req)
    params = body["keypair"]
    name = params["name"].strip()
    key_type = params.get("type", SSH)
    user_id = params.get("user_id") or ctx.user_id
    _authorize(req, "create", user_id)

    _check_name(name)
    try:
        # the limit is the owner's project's (known when creating one's own key)
        quota.check_key_pairs(user_id, project_id=ctx.project_id if user_id == ctx.user_id
                              else None)
    except exception.OverQuota:
        raise exception.Forbidden("Quota exceeded, too many key pairs.") from None
    private_key = None
    if "public_key" in params:
        public_key = params["public_key"]
        fingerprint = (x509_fingerprint(public_key) if key_type == X509
                       else ssh_fingerprint(public_key))
    elif key_type == X509:
        public_key, private_key, fingerprint = generate_x509(user_id)
    else:
        public_key, private_key, fingerprint = generate_ssh()

    with api_session() as s:
        if s.scalar(select(am.KeyPair.id).where(am.KeyPair.user_id == user_id,
                                                am.KeyPair.name == name)):
            raise exception.Conflict(f"Key pair '{name}' already exists.")
        s.add(am.KeyPair(name=name, user_id=user_id, fingerprint=fingerprint,
                         public_key=public_key, type=key_type, created_at=utcnow()))

    keypair: dict[str, Any] = {"name": name, "public_key": public_key,
                               "fingerprint": fingerprint, "user_id": user_id}
    if version.matches("2.2"):
        keypair["type"] = key_type
    if private_key is not None:
        keypair["private_key"] = private_key
    return json_response({"keypair": keypair}, status=201 if version.matches("2.2") else 200)


def show(req: webob.Request, name: str) -> webob.Response:
    version = api_version(req)
    user_id = _user_id(req)
    _authorize(req, "show", user_id)
    row = _get(user_id, name)
    keypair = _summary(row, version.matches("2.2"))
    # keypairs are never soft-deleted; Nova still shows the columns
    keypair.update({"id": row.id, "user_id": row.user_id, "created_at": isotime(row.created_at),
                    "updated_at": isotime(row.updated_at), "deleted": False,
                    "deleted_at": None})
    return json_response({"keypair": keypair})


def delete(req: webob.Request, name: str) -> webob.Response:
    version = api_version(req)
    user_id = _user_id(req)
    _authorize(req, "delete", user_id)
    with api_session() as s:
        row = s.scalar(select(am.KeyPair).where(am.KeyPair.user_id == user_id,
                                                am.KeyPair.name == name))
        if row is None:
            raise exception.KeypairNotFound(name=name, user_id=user_id)
        s.delete(row)
    return empty_response(204 if version.matches("2.2") else 202)
