"""OTP codes: random, stored only as keyed hashes, derivable again for a resend.

A code is derived from a random per-verification seed under the server's OTP key
(HMAC, core/secrets.py), so a resend can send the same code without the code being
stored anywhere; the row holds the seed and an HMAC of the code bound to the
project and verification. A database leak without the master key yields neither.
"""

from __future__ import annotations

import secrets as _random

from ..secrets import Secrets


class Codes:
    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

    @staticmethod
    def new_seed() -> str:
        return _random.token_hex(16)

    def derive(self, verification_id: str, seed: str, length: int) -> str:
        mac = self._secrets.keyed_hash_otp(f"code:{verification_id}", seed)
        # 256 bits mod 10^10: the bias is below 2^-200, far under any guessing gain.
        return str(int(mac, 16) % 10**length).zfill(length)

    def hash(self, project_id: int, verification_id: str, code: str) -> str:
        return self._secrets.keyed_hash_otp(f"verify:{project_id}:{verification_id}", code)

    @staticmethod
    def same(candidate_hash: str, stored_hash: str) -> bool:
        return _random.compare_digest(candidate_hash, stored_hash)
