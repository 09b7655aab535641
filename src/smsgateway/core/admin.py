"""The shared admin key (ADMIN_API_KEY): the operators' credential."""

from __future__ import annotations

import hmac

from .errors import AdminKeyNotConfigured, InvalidAdminKey


class AdminKey:
    def __init__(self, key: str, *, open_registration: bool = False) -> None:
        self._key = key.encode()
        self.open_registration = open_registration

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def check(self, presented: str | None) -> None:
        """Raise unless `presented` is the key; compared in constant time."""
        if not self._key:
            raise AdminKeyNotConfigured()
        if presented is None or not hmac.compare_digest(presented.encode(), self._key):
            raise InvalidAdminKey()

    def check_unless_open(self, presented: str | None) -> None:
        """For register / validate / delete: the key, unless registration is open."""
        if not self.open_registration:
            self.check(presented)
