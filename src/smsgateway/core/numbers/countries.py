"""Countries from phonenumbers' metadata, with ids that never change.

A country's id is computed from its ISO 3166 alpha-2 code (AA = 1 ... ZZ = 676), not
from a position in a list, so ids stay the same across restarts, library upgrades
and nodes, and need no table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers

# Regions phonenumbers has no English name for (shared calling codes).
_NAMES = {
    "AC": "Ascension Island",
    "BL": "Saint Barthélemy",
    "EH": "Western Sahara",
    "MF": "Saint Martin",
    "TA": "Tristan da Cunha",
    "XK": "Kosovo",
}


@dataclass(frozen=True, slots=True)
class Country:
    id: int
    name: str
    phone_code: str
    iso: str


def country_id(iso: str) -> int:
    a, b = iso.upper()[0], iso.upper()[1]
    return (ord(a) - 65) * 26 + (ord(b) - 65) + 1


def _name(iso: str) -> str:
    if iso in _NAMES:
        return _NAMES[iso]
    example = phonenumbers.example_number(iso) or phonenumbers.example_number_for_type(
        iso, phonenumbers.PhoneNumberType.MOBILE
    )
    # Imported here, not at module load: the geocoder's data is 19 MB of Python that
    # only /api/init needs, and every gateway start would pay for it.
    from phonenumbers import geocoder

    name = geocoder.country_name_for_number(example, "en") if example is not None else ""
    return name or iso


@cache
def countries() -> tuple[Country, ...]:
    """Every region phonenumbers knows, by name."""
    found = [
        Country(country_id(iso), _name(iso), str(phonenumbers.country_code_for_region(iso)), iso)
        for iso in phonenumbers.SUPPORTED_REGIONS
        if len(iso) == 2 and iso.isalpha()
    ]
    return tuple(sorted(found, key=lambda c: (c.name, c.iso)))


@cache
def by_id() -> dict[int, Country]:
    return {c.id: c for c in countries()}


def by_iso(iso: str) -> Country | None:
    if len(iso) != 2 or not iso.isascii() or not iso.isalpha():
        return None
    try:
        return by_id().get(country_id(iso))
    except (ValueError, TypeError):
        return None
