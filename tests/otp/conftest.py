from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gwkit import Gateway, link_to, make_settings
from smsgateway.settings_otp import OtpSettings
from smsgateway.smscsim.simulator import SmscSimulator

MakeOtpGateway = Callable[..., Awaitable[tuple[Gateway, SmscSimulator]]]


@pytest.fixture
async def otp_gateway(tmp_path: Path, make_sim: Any, make_gateway: Any) -> MakeOtpGateway:
    """A gateway whose link 1 is bound to a simulator; OTP settings as given."""

    async def make(**otp: Any) -> tuple[Gateway, SmscSimulator]:
        sim = await make_sim()
        settings = make_settings(tmp_path, [link_to(sim)])
        settings.otp = OtpSettings(**otp)
        settings.validate()
        gw = await make_gateway(settings)
        await gw.bound()
        return gw, sim

    return make
