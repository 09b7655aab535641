"""OTP extraction on a corpus of real-world-shaped SMS in many languages: misses
(a code not found or a wrong one) and false positives (a code found where there is
none) are counted, printed and held to zero, and so is every provider."""

from __future__ import annotations

from otp_corpus import CORPUS

from smsgateway.core.numbers.otp_extract import extract, extract_code, recognise_provider


def test_corpus_is_big_and_varied() -> None:
    assert len(CORPUS) >= 50
    assert sum(1 for _, _, code, _ in CORPUS if code is None) >= 5
    scripts = {
        "cyrillic": any("\u0400" <= c <= "\u04ff" for _, t, _, _ in CORPUS for c in t),
        "arabic": any("\u0600" <= c <= "\u06ff" for _, t, _, _ in CORPUS for c in t),
        "cjk": any("\u4e00" <= c <= "\u9fff" for _, t, _, _ in CORPUS for c in t),
        "hangul": any("\uac00" <= c <= "\ud7af" for _, t, _, _ in CORPUS for c in t),
    }
    assert all(scripts.values()), scripts


def test_codes_and_providers_over_the_corpus() -> None:
    misses, false_positives, wrong_provider = [], [], []
    for sender, text, code, provider in CORPUS:
        found = extract(text, sender)
        if code is None and found.code is not None:
            false_positives.append((text, found.code))
        elif code is not None and found.code != code:
            misses.append((text, found.code, code))
        if found.provider != (provider or sender):
            wrong_provider.append((sender, text, found.provider))
    with_code = sum(1 for _, _, code, _ in CORPUS if code is not None)
    print(
        f"\nOTP corpus: {len(CORPUS)} messages, {with_code} with a code: "
        f"{len(misses)} misses, {len(false_positives)} false positives, "
        f"{len(wrong_provider)} wrong providers"
    )
    assert misses == []
    assert false_positives == []
    assert wrong_provider == []


def test_shapes() -> None:
    assert extract_code("G-123456 is your Google verification code") == "123456"
    assert extract_code("Your code is 123-456") == "123456"
    assert extract_code("Your code is 123 456.") == "123456"
    assert extract_code("код: ١٢٣٤٥٦") == "123456"  # Arabic-Indic digits
    # Near the word, not just anywhere: the code, not the amount or the phone number.
    assert extract_code("Pay $1200 now. Your code: 9931. Help: +1 800 555 1234") == "9931"
    assert extract_code("Code 12 is not four digits") is None
    assert extract_code("Your code expires on 12.05.2024") is None
    assert extract_code("Your code is 123456789") is None  # nine digits: not a code
    assert extract_code("Meeting at 10:30, room 4401") is None  # no keyword near


def test_provider_from_sender_then_text() -> None:
    assert recognise_provider("WhatsApp", "code 123456") == "WhatsApp"
    assert recognise_provider("447700900123", "Your Telegram code 12345") == "Telegram"
    assert recognise_provider("ACME", "Your code 12345") == "ACME"
