"""The [numbers] settings: file, environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsgateway.settings import SettingsError, load_settings


def test_numbers_section_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("[numbers]\nassignment_ttl_s = 60\nallow_http_webhooks = true\n")
    s = load_settings(config, env={"SMSGATEWAY_NUMBERS_SYSTEM_API_KEY": "sys-key"})
    assert s.numbers.assignment_ttl_s == 60
    assert s.numbers.allow_http_webhooks is True
    assert s.numbers.system_api_key == "sys-key"
    assert s.numbers.webhook_retry_s == 24 * 3600  # the default


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("webhook_concurrency = 0", "numbers.webhook_concurrency"),
        ("assignment_ttl_s = 0", "numbers.assignment_ttl_s"),
        ("webhook_retry_s = -1", "numbers.webhook_retry_s"),
        ("no_such_key = 1", "no_such_key"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, line: str, key: str) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f"[numbers]\n{line}\n")
    with pytest.raises(SettingsError, match=key):
        load_settings(config, env={})
