"""A reference Android device speaking the "SMS Gateway for Android" protocol."""

from .demo import linked_phone
from .sim import DeviceSim, Received, SimConfig, Unauthorized, app_date

__all__ = ["DeviceSim", "Received", "SimConfig", "Unauthorized", "app_date", "linked_phone"]
