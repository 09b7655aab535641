"""A reference Android device speaking the "SMS Gateway for Android" protocol."""

from .demo import DemoPhone, demo_project_phone, linked_phone
from .sim import DeviceSim, Received, SimConfig, Unauthorized, app_date

__all__ = [
    "DemoPhone",
    "DeviceSim",
    "Received",
    "SimConfig",
    "Unauthorized",
    "app_date",
    "demo_project_phone",
    "linked_phone",
]
