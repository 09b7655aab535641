"""What a number user looks like to an operator (admin API and console alike)."""

from __future__ import annotations

from typing import Any

from ...store.numbers import NumberUserRow


def user_view(u: NumberUserRow) -> dict[str, Any]:
    # Chosen fields: the row holds credential hashes no answer may carry.
    return {
        "user_id": u.id,
        "email": u.email,
        "name": u.name,
        "manager_id": u.manager_id,
        "active": u.active,
        "approved": u.approved,
        "webhook_url": u.webhook_url,
        "number_format": u.number_format,
        "numbers_taken": u.numbers_taken,
        "otps_received": u.otps_received,
        "last_number_at": u.last_number_at,
        "created_at": u.created_at,
    }
