"""Signed licenses: who may run this gateway, until when, with how many binds and TPS.

A license file is JSON:

    {"format": "smsgateway-license/1",
     "payload": "<base64url of the claims, JSON>",
     "signature": "<base64url Ed25519 signature of exactly those payload bytes>"}

Claims: `company`, `valid_until` (YYYY-MM-DD, valid through that day, UTC),
`max_connections`, `max_tps`, plus `license_id` and `issued_at` for the record.

The signature is checked against the vendor public key in the settings
(`[license] public_key`), and only that key: a key carried inside a license would
let anyone sign their own. The vendor's private key never ships; `smsgateway license
keygen` makes a pair and `smsgateway license issue` signs a license with it.

Status: `active` (verified, not expired), `expired` (verified, past valid_until),
`invalid` (a stored file that no longer verifies, e.g. after a key change) or `none`.
Only an active license limits the gateway; otherwise the settings' limits apply.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import InvalidRequest, Unavailable

FORMAT = "smsgateway-license/1"
MAX_LICENSE_BYTES = 16 * 1024


class LicenseError(InvalidRequest):
    default_message = "invalid license"


class LicenseKeyMissing(Unavailable):
    default_message = "license public key not configured"


class LicenseClaims(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    company: str
    valid_until: str
    max_connections: int
    max_tps: int
    license_id: str = ""
    issued_at: str = ""

    def expires(self) -> dt.date:
        return dt.date.fromisoformat(self.valid_until)


class LicenseView(msgspec.Struct):
    """What GET /settings/license shows."""

    company: str
    valid_until: str
    max_connections: int
    max_tps: int
    status: str


class _File(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    payload: str
    signature: str


_file_decoder = msgspec.json.Decoder(_File)
_claims_decoder = msgspec.json.Decoder(LicenseClaims)


def _b64decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- keys ----------------------------------------------------------------------------


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from PEM or from base64 (standard or url-safe) of its 32 raw bytes."""
    text = text.strip()
    if not text:
        raise ValueError("license.public_key is empty")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise ValueError(f"license.public_key: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("license.public_key: not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise ValueError("license.public_key: expected PEM or base64 of 32 raw Ed25519 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def generate_keypair() -> tuple[bytes, bytes, str]:
    """A new vendor key pair: (private PEM, public PEM, public base64 for the settings)."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private_pem, public_pem, base64.b64encode(raw).decode()


# -- issue and verify ------------------------------------------------------------------


def issue(
    private_key: Ed25519PrivateKey,
    *,
    company: str,
    valid_until: dt.date,
    max_connections: int,
    max_tps: int,
    issued_at: dt.datetime | None = None,
) -> bytes:
    """A signed license file's bytes."""
    if not company.strip():
        raise ValueError("company is required")
    if max_connections < 1 or max_tps < 1:
        raise ValueError("max_connections and max_tps must be positive")
    claims = {
        "company": company.strip(),
        "valid_until": valid_until.isoformat(),
        "max_connections": max_connections,
        "max_tps": max_tps,
        "license_id": str(uuid.uuid4()),
        "issued_at": (issued_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    doc = {
        "format": FORMAT,
        "payload": _b64encode(payload),
        "signature": _b64encode(private_key.sign(payload)),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def verify(data: bytes, public_key: Ed25519PublicKey) -> LicenseClaims:
    """The claims of a license file signed by `public_key`; LicenseError otherwise."""
    if not data.strip():
        raise LicenseError("license file is empty")
    if len(data) > MAX_LICENSE_BYTES:
        raise LicenseError("invalid license format: file too large")
    try:
        doc = _file_decoder.decode(data)
        payload = _b64decode(doc.payload)
        signature = _b64decode(doc.signature)
    except (msgspec.DecodeError, binascii.Error, ValueError):
        raise LicenseError("invalid license format") from None
    if doc.format != FORMAT:
        raise LicenseError(f"invalid license format: expected {FORMAT}")
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise LicenseError("invalid license signature") from None
    try:
        claims = _claims_decoder.decode(payload)
        claims.expires()
    except (msgspec.DecodeError, ValueError):
        raise LicenseError("invalid license format: bad claims") from None
    if claims.max_connections < 1 or claims.max_tps < 1:
        raise LicenseError("invalid license format: limits must be positive")
    return claims


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class LicenseManager:
    """The license in force: loaded at start, replaced by uploads, checked for expiry."""

    def __init__(
        self,
        public_key: str,
        path: Path,
        *,
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self._key = load_public_key(public_key) if public_key.strip() else None
        self.path = path
        self._today = today
        self.claims: LicenseClaims | None = None
        self._invalid = False

    @property
    def configured(self) -> bool:
        return self._key is not None

    def load(self) -> None:
        """Read the stored file, if any. A file that does not verify leaves `invalid`."""
        self.claims = None
        self._invalid = False
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        if self._key is None:
            self._invalid = True
            return
        try:
            self.claims = verify(data, self._key)
        except LicenseError:
            self._invalid = True

    @property
    def status(self) -> str:
        if self.claims is not None:
            return "active" if self._today() <= self.claims.expires() else "expired"
        return "invalid" if self._invalid else "none"

    def limits(self) -> tuple[int, int] | None:
        """(max_connections, max_tps) while a license is active; None: settings rule."""
        if self.claims is None or self.status != "active":
            return None
        return self.claims.max_connections, self.claims.max_tps

    def view(self) -> LicenseView:
        c = self.claims
        if c is None:
            return LicenseView("", "", 0, 0, self.status)
        return LicenseView(c.company, c.valid_until, c.max_connections, c.max_tps, self.status)

    def accept(self, data: bytes) -> LicenseClaims:
        """Verify an uploaded file, refuse it if expired, else store it and use it."""
        if self._key is None:
            raise LicenseKeyMissing()
        claims = verify(data, self._key)
        if self._today() > claims.expires():
            raise LicenseError(f"license expired on {claims.valid_until}")
        _write_atomic(self.path, data)
        self.claims = claims
        self._invalid = False
        return claims


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash mid-write must leave the old license, not half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".license-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
