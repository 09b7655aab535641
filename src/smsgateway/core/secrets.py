"""The master key and everything derived from it.

The master key is 32 bytes, taken from `SMSGATEWAY_MASTER_KEY` (urlsafe base64, with
or without padding) or else from `<data_dir>/master.key`, which is created on first
use with mode 0600. The environment wins when both exist, so a deployment can move
the key into a secret store without deleting the file first.

An existing key file that the group or others can read or write is refused: the key
decrypts every app secret, and a gateway that starts anyway would hide the exposure.
The error says how to fix it (`chmod 600`, or use the environment variable).

Subkeys are derived with HKDF-SHA256 under distinct labels so that the AES key for
app secrets, the API-key hash key and the OTP hash key are independent: leaking one
hash key (say, by a future debug endpoint) does not reveal the encryption key.

Blob layout for encrypted secrets: 1 version byte (0x01) | 12-byte random nonce |
AES-256-GCM ciphertext with its 16-byte tag. The version byte lets a later key
rotation add a key id without guessing at old blobs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets as _stdlib_secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENV_VAR = "SMSGATEWAY_MASTER_KEY"
KEY_FILE_NAME = "master.key"
KEY_BYTES = 32

_BLOB_V1 = b"\x01"
_NONCE_BYTES = 12
_AAD_APP_SECRET = b"smsgateway/app-secret/v1"


class SecretsError(Exception):
    """The master key is missing, malformed, exposed, or does not fit a blob."""


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


def _decode_key(text: str, origin: str) -> bytes:
    text = text.strip()
    try:
        # validate=True: the lenient default silently drops stray characters.
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretsError(f"{origin}: master key is not urlsafe base64") from exc
    if len(raw) != KEY_BYTES:
        raise SecretsError(f"{origin}: master key must be {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def encode_key(raw: bytes) -> str:
    """The text form of a master key, as the env variable and the key file hold it."""
    return base64.urlsafe_b64encode(raw).decode("ascii")


def generate_master_key() -> str:
    return encode_key(os.urandom(KEY_BYTES))


def _read_key_file(path: Path) -> bytes:
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"{path}: master key file is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}` "
            f"or supply the key in {ENV_VAR}"
        )
    return _decode_key(path.read_text("ascii"), str(path))


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = os.urandom(KEY_BYTES)
    # O_EXCL: two processes starting together must not each write their own key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (encode_key(raw) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return raw


def load_master_key(data_dir: Path | str, env: Mapping[str, str] | None = None) -> bytes:
    """The master key from the environment, the key file, or a new key file."""
    env = os.environ if env is None else env
    from_env = env.get(ENV_VAR, "").strip()
    if from_env:
        return _decode_key(from_env, ENV_VAR)
    path = Path(data_dir) / KEY_FILE_NAME
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    try:
        return _create_key_file(path)
    except FileExistsError:
        return _read_key_file(path)


def generate_app_secret() -> str:
    """A new app secret: 32 random bytes, urlsafe text (43 characters)."""
    return _stdlib_secrets.token_urlsafe(32)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare without leaking where the inputs first differ."""
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


class Secrets:
    """Encrypts app secrets and computes keyed hashes under one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise SecretsError(f"master key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(master_key, b"smsgateway app-secret encryption v1"))
        self._api_key_mac = _derive(master_key, b"smsgateway api-key hash v1")
        self._otp_mac = _derive(master_key, b"smsgateway otp hash v1")

    @classmethod
    def load(cls, data_dir: Path | str, env: Mapping[str, str] | None = None) -> Secrets:
        return cls(load_master_key(data_dir, env))

    def encrypt_secret(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _AAD_APP_SECRET)
        return _BLOB_V1 + nonce + sealed

    def decrypt_secret(self, blob: bytes) -> str:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _BLOB_V1:
            raise SecretsError("encrypted secret has an unknown format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], _AAD_APP_SECRET)
        except InvalidTag as exc:
            raise SecretsError(
                "cannot decrypt a stored secret: wrong master key, or the row was altered"
            ) from exc
        return plain.decode("utf-8")

    def encrypt_bytes(self, plaintext: bytes, context: bytes) -> bytes:
        """Seal `plaintext` bound to `context` (AAD): a blob opens only under the same
        context, so one row's blob cannot be pasted into another. Same layout as
        app secrets; contexts are labelled apart from the app-secret AAD."""
        nonce = os.urandom(_NONCE_BYTES)
        return _BLOB_V1 + nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt_bytes(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _BLOB_V1:
            raise SecretsError("encrypted data has an unknown format")
        try:
            return self._aead.decrypt(blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :], context)
        except InvalidTag as exc:
            raise SecretsError(
                "cannot decrypt stored data: wrong master key, or the row was altered"
            ) from exc

    def hash_api_key(self, key: str) -> str:
        """Keyed hash of an API key, hex; store this, never the key."""
        return hmac.new(self._api_key_mac, key.encode("utf-8"), hashlib.sha256).hexdigest()

    def keyed_hash_otp(self, scope: str, code: str) -> str:
        """Keyed hash of an OTP code bound to its scope (project, phone, request id).

        Binding the scope stops a stored hash for one request from matching the same
        six digits sent for another; the key stops offline guessing from a db leak.
        """
        msg = scope.encode("utf-8") + b"\x00" + code.encode("utf-8")
        return hmac.new(self._otp_mac, msg, hashlib.sha256).hexdigest()

    def verify_api_key(self, key: str, stored_hash: str) -> bool:
        return constant_time_equals(self.hash_api_key(key), stored_hash)

    def verify_otp(self, scope: str, code: str, stored_hash: str) -> bool:
        return constant_time_equals(self.keyed_hash_otp(scope, code), stored_hash)
