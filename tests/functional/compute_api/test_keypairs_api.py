"""Keypairs: generate, import, list, show, delete, per microversion."""

from __future__ import annotations

import base64
import hashlib

from compute_api_fixtures import ADMIN, ALT, DEMO
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

SHOW_KEYS_21 = {"name", "public_key", "fingerprint", "user_id", "id", "created_at",
                "updated_at", "deleted", "deleted_at"}


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + " me@example"


def _md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def test_generate_at_21_returns_the_private_key_once(cloud):
    resp = cloud.post("/os-keypairs", {"keypair": {"name": "gen"}}, token=DEMO)
    assert resp.status_int == 200
    keypair = resp.json["keypair"]
    assert set(keypair) == {"name", "public_key", "fingerprint", "user_id", "private_key"}
    assert keypair["user_id"] == "demo"
    assert keypair["public_key"].startswith("ssh-rsa ")
    assert keypair["fingerprint"] == _md5_fingerprint(keypair["public_key"])
    private = serialization.load_pem_private_key(keypair["private_key"].encode(), None)
    assert private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() == \
        " ".join(keypair["public_key"].split()[:2])

    shown = cloud.get("/os-keypairs/gen", token=DEMO).json["keypair"]
    assert set(shown) == SHOW_KEYS_21
    assert "private_key" not in shown
    assert (shown["deleted"], shown["deleted_at"]) == (False, None)
    assert isinstance(shown["id"], int)


def test_import_at_22_has_a_type_and_201(cloud):
    public_key = _public_key()
    resp = cloud.post("/os-keypairs", {"keypair": {"name": "mine", "public_key": public_key}},
                      token=DEMO, version="2.2")
    assert resp.status_int == 201
    assert resp.json["keypair"] == {"name": "mine", "public_key": public_key,
                                    "fingerprint": _md5_fingerprint(public_key),
                                    "user_id": "demo", "type": "ssh"}

    old = cloud.get("/os-keypairs", token=DEMO).json
    assert old == {"keypairs": [{"keypair": {"name": "mine", "public_key": public_key,
                                             "fingerprint": _md5_fingerprint(public_key)}}]}
    new = cloud.get("/os-keypairs", token=DEMO, version="2.2").json
    assert new["keypairs"][0]["keypair"]["type"] == "ssh"
    assert cloud.get("/os-keypairs/mine", token=DEMO, version="2.2").json["keypair"]["type"] \
        == "ssh"
    assert cloud.get("/os-keypairs", token=ALT).json == {"keypairs": []}


def test_type_is_refused_at_21_and_x509_is_accepted_at_22(cloud):
    body = {"keypair": {"name": "cert", "type": "x509"}}
    assert cloud.post("/os-keypairs", body, token=DEMO).status_int == 400
    made = cloud.post("/os-keypairs", body, token=DEMO, version="2.2")
    assert made.status_int == 201
    assert made.json["keypair"]["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(made.json["keypair"]["fingerprint"].split(":")) == 20


def test_duplicates_bad_keys_and_bad_names(cloud):
    body = {"keypair": {"name": "k", "public_key": _public_key()}}
    assert cloud.post("/os-keypairs", body, token=DEMO).status_int == 200
    dup = cloud.post("/os-keypairs", body, token=DEMO)
    assert dup.status_int == 409
    assert dup.json == {"conflictingRequest": {"code": 409,
                                               "message": "Key pair 'k' already exists."}}
    assert cloud.post("/os-keypairs", body, token=ALT).status_int == 200  # per user

    bad_key = cloud.post("/os-keypairs", {"keypair": {"name": "x", "public_key": "ssh-rsa x"}},
                         token=DEMO)
    assert bad_key.status_int == 400
    assert bad_key.json["badRequest"]["message"] == \
        "Keypair data is invalid: failed to generate fingerprint"
    unsafe = cloud.post("/os-keypairs", {"keypair": {"name": "a.b"}}, token=DEMO)
    assert unsafe.status_int == 400
    assert unsafe.json["badRequest"]["message"] == \
        "Keypair data is invalid: Keypair name contains unsafe characters"
    assert cloud.post("/os-keypairs", {"keypair": {}}, token=DEMO).status_int == 400
    assert [k["keypair"]["name"] for k in cloud.get("/os-keypairs", token=DEMO)
            .json["keypairs"]] == ["k"]


def test_delete_codes_and_not_found(cloud):
    body = {"keypair": {"name": "k", "public_key": _public_key()}}
    cloud.post("/os-keypairs", body, token=DEMO)
    assert cloud.delete("/os-keypairs/k", token=DEMO).status_int == 202
    cloud.post("/os-keypairs", body, token=DEMO)
    assert cloud.delete("/os-keypairs/k", token=DEMO, version="2.2").status_int == 204
    missing = cloud.get("/os-keypairs/k", token=DEMO)
    assert missing.status_int == 404
    assert missing.json["itemNotFound"]["message"] == "Keypair k not found for user demo"
    assert cloud.delete("/os-keypairs/k", token=DEMO).status_int == 404


def test_admins_reach_other_users_from_210(cloud):
    body = {"keypair": {"name": "k", "public_key": _public_key(), "user_id": "demo"}}
    assert cloud.post("/os-keypairs", body, version="2.9").status_int == 400
    made = cloud.post("/os-keypairs", body, version="2.10")
    assert made.status_int == 201
    assert made.json["keypair"]["user_id"] == "demo"
    assert cloud.get("/os-keypairs/k?user_id=demo", version="2.10").status_int == 200
    assert cloud.get("/os-keypairs/k?user_id=demo", version="2.9").status_int == 404
    denied = cloud.get("/os-keypairs?user_id=demo", token=ALT, version="2.10")
    assert denied.status_int == 403
    assert denied.json["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."
    assert cloud.delete("/os-keypairs/k?user_id=demo", token=ADMIN,
                        version="2.10").status_int == 204


def test_paging_from_235(cloud):
    for name in ("c", "a", "b"):
        cloud.post("/os-keypairs", {"keypair": {"name": name, "public_key": _public_key()}},
                   token=DEMO)
    page = cloud.get("/os-keypairs?limit=2", token=DEMO, version="2.35").json
    assert [k["keypair"]["name"] for k in page["keypairs"]] == ["a", "b"]
    assert page["keypairs_links"] == [{"rel": "next", "href": "http://localhost/v2.1/"
                                       "os-keypairs?limit=2&marker=b"}]
    rest = cloud.get("/os-keypairs?limit=2&marker=b", token=DEMO, version="2.35").json
    assert [k["keypair"]["name"] for k in rest["keypairs"]] == ["c"]
    assert "keypairs_links" not in rest
    # before 2.35 paging parameters are ignored
    assert len(cloud.get("/os-keypairs?limit=2", token=DEMO).json["keypairs"]) == 3
    assert cloud.get("/os-keypairs?marker=zz", token=DEMO, version="2.35").status_int == 400
