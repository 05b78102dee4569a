"""Password hashes for the users made through the identity API.

The embedded cloud's own users keep clear-text passwords because transcell
hands them to the operator in clouds.yaml; a password someone chose through
``POST /v3/users`` is never needed again in clear, so only a salted PBKDF2 hash
of it is stored: ``pbkdf2-sha256$<iterations>$<salt hex>$<digest hex>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "pbkdf2-sha256"
#: Enough to make a stolen identity file slow to brute-force, cheap enough that a
#: login on a busy two-core machine stays well under a tenth of a second.
ITERATIONS = 60_000
SALT_BYTES = 16


def _digest(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _digest(password, salt, ITERATIONS)
    return f"{SCHEME}${ITERATIONS}${salt.hex()}${digest.hex()}"


def matches(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; a malformed
    stored hash matches nothing."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = bytes.fromhex(digest)
        actual = _digest(password, bytes.fromhex(salt), int(iterations))
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(expected, actual)
