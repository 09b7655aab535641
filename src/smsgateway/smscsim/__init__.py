"""The built-in SMSC simulator (`smsgateway smsc-sim`), an application on top of `smpp/`."""

from .simulator import SimulatorConfig, SmscSimulator

__all__ = ["SimulatorConfig", "SmscSimulator"]
