"""The OIDC provider fixture for the token tests (tests/oidckit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oidckit import OidcProvider


@pytest.fixture
async def oidc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(Path(tmp_path_factory.mktemp("oidc")))
    await provider.start()
    yield provider
    await provider.stop()
