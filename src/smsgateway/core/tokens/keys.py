"""The gateway's own token signing key: an ECDSA P-256 key (ES256) in the data directory.

`<data_dir>/oauth-signing.pem` (PKCS#8 PEM) is created on first start with mode 0600,
as master.key is, and refused when the group or others can read it. Its `kid` is the
RFC 7638 JWK thumbprint of the public key, so it is stable across restarts and changes
with the key. Only the public half ever leaves this module (`public_jwk`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEY_FILE_NAME = "oauth-signing.pem"
ALGORITHM = "ES256"


class SigningKeyError(Exception):
    """The key file is exposed, unreadable or not a P-256 key."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SigningKey:
    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private.curve, ec.SECP256R1):
            raise SigningKeyError("the token signing key must be an EC P-256 key")
        self._private = private
        numbers = private.public_key().public_numbers()
        self._public: dict[str, str] = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        # RFC 7638: the required members in lexicographic order, no whitespace.
        canonical = json.dumps(self._public, sort_keys=True, separators=(",", ":"))
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self.algorithm = ALGORITHM

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load(cls, data_dir: Path | str) -> SigningKey:
        """The key from the data directory, creating it on first use."""
        path = Path(data_dir) / KEY_FILE_NAME
        try:
            return cls._read(path)
        except FileNotFoundError:
            pass
        key = cls.generate()
        pem = key._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting together must not each write their own key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._read(path)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    @classmethod
    def _read(cls, path: Path) -> SigningKey:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningKeyError(
                f"{path}: token signing key is accessible by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`"
            )
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise SigningKeyError(f"{path}: not a PEM private key") from exc
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise SigningKeyError(f"{path}: the token signing key must be an EC P-256 key")
        return cls(private)

    def public_jwk(self) -> dict[str, str]:
        return {**self._public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self._private,
            algorithm=self.algorithm,
            headers={"kid": self.kid, "typ": "at+jwt"},
        )
