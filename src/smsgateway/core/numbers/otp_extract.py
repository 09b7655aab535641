"""OTP codes and providers from the text of an SMS.

A code is 4-8 digits (also written `123-456`, `123 456`, or with a provider prefix
such as `G-123456`), standing near a word that means "code" in one of several
languages, or in a shape a known provider uses. Digits that are part of a phone
number, a date, a time, an amount or a decimal are not codes. The code is returned
as digits only: what a user types.

The provider is recognised from the sender id first (an SMSC passes the brand name
as an alphanumeric sender), then from the text; failing both, it is the sender id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Words that announce a code, in lower case (the text is case-folded before matching).
_KEYWORDS = (
    # English
    "code", "otp", "pin", "passcode", "password", "verification", "verify",
    "one-time", "one time", "security", "token", "authentication", "login", "2fa",
    # German, Dutch, Scandinavian
    "kode", "bestätigungscode", "sicherheitscode", "verifizierungscode", "zugangscode",
    "wachtwoord", "verificatiecode", "engangskode", "bekräftelsekod",
    # Turkish, Polish, Czech, Slovak, Croatian, Hungarian
    "kod", "kodu", "şifre", "sifre", "doğrulama", "kód", "kodem", "kodu", "jelszó",
    # Spanish, Portuguese, Italian, French, Romanian
    "código", "codigo", "clave", "contraseña", "senha", "codice", "verifica",
    "mot de passe", "vérification", "cod",
    # Russian, Ukrainian, Bulgarian, Serbian
    "код", "пароль", "кодом", "кода", "підтвердження", "подтверждения",
    # Arabic, Persian, Hebrew
    "رمز", "كود", "الرمز", "كلمة المرور", "کد", "קוד",
    # Chinese, Japanese, Korean, Vietnamese, Indonesian, Thai, Hindi
    "验证码", "驗證碼", "校验码", "动态码", "認証コード", "確認コード", "コード",
    "인증번호", "인증", "mã", "ma xac thuc", "ma xac minh", "xác minh", "xác thực",
    "kode verifikasi", "รหัส", "कोड", "ओटीपी",
)  # fmt: skip

_KEYWORD_RE = re.compile(
    "|".join(re.escape(k) for k in sorted(_KEYWORDS, key=len, reverse=True)), re.IGNORECASE
)

# Candidates: an optional letter prefix ("G-", "FB-"), then 3+3 digits split by a
# dash or space, or 4-8 digits. Digits, letters, "+", "/", ".", "," right before, or
# digits, letters, "/" right after, or a decimal after, mean it is part of something else.
_CANDIDATE = re.compile(
    r"(?<![A-Za-z\d+/.,\-])"
    r"(?:(?P<prefix>[A-Z]{1,4})-)?"
    r"(?P<code>\d{3}[- ]\d{3}(?![- ]?\d)|\d{4,8})"
    r"(?![A-Za-z\d/]|[.,:]\d|-\d)"
)

# Amounts: a currency sign or code just before or after the digits.
_CURRENCY_BEFORE = re.compile(
    r"(?:[$€£¥₹₽₺₩₫₦฿]|\b(?:usd|eur|gbp|rub|try|inr|brl|r\$|rs\.?|tl|kzt|uah|pln|aed|sar))"
    r"\s?$",
    re.IGNORECASE,
)
_CURRENCY_AFTER = re.compile(
    r"^\s?(?:[$€£¥₹₽₺₩₫₦฿]|(?:usd|eur|gbp|rub|руб|try|tl|inr|lei|zł|pln|uah|грн|dollars?"  # noqa: RUF001
    r"|euros?|rupees?|₽|aed|sar|ريال|درهم)\b)",
    re.IGNORECASE,
)
# Words that make a nearby number something other than a code.
_NOT_CODE_BEFORE = re.compile(
    r"(?:\b(?:call|tel|phone|ph|fax|order|invoice|ref|reference|account|acct|card|ending"
    r"|ticket|booking|id|no\.?|nr\.?|номер|заказ|تلفن|هاتف)\s*[:#]?\s*)$",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(?:19|20)\d{2}$")

_WINDOW = 48  # characters between a keyword and its code, at most
# ...or this many when it is the only candidate in the message ("Your OTP for the
# transaction of INR 5,000.00 at SHOP on card XX1234 is 839201").
_LONE_WINDOW = 120


@dataclass(frozen=True, slots=True)
class Extracted:
    code: str | None
    provider: str


@dataclass(frozen=True, slots=True)
class _Provider:
    name: str
    senders: tuple[str, ...]  # sender ids, lower case, compared whole
    words: re.Pattern[str]  # how the text names it
    code: re.Pattern[str] | None = None  # its own code shape, tried first


def _words(*names: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)", re.I)


_PROVIDERS = (
    _Provider(
        "Google",
        ("google", "googleverify", "gmail", "youtube"),
        _words("google", "gmail", "youtube"),
        re.compile(r"(?<![A-Za-z\d])G-(\d{4,8})(?!\d)"),
    ),
    _Provider(
        "WhatsApp",
        ("whatsapp", "wa"),
        _words("whatsapp"),
        re.compile(r"(?i)whatsapp[^\d]{0,40}?(\d{3}-\d{3})(?!\d)"),
    ),
    _Provider("Telegram", ("telegram",), _words("telegram")),
    _Provider(
        "Facebook",
        ("facebook", "fb", "fbook", "meta"),
        _words("facebook", "fb"),
        re.compile(r"(?<![A-Za-z\d])FB-(\d{4,8})(?!\d)"),
    ),
    _Provider("Instagram", ("instagram",), _words("instagram")),
    _Provider(
        "Microsoft",
        ("microsoft", "msft", "outlook", "skype"),
        _words("microsoft", "outlook", "skype", "xbox"),
    ),
    _Provider("Apple", ("apple", "appleid", "icloud"), _words("apple", "apple id", "icloud")),
    _Provider("Amazon", ("amazon", "amzn", "aws"), _words("amazon", "aws")),
    _Provider("Twitter", ("twitter", "x"), _words("twitter")),
    _Provider("TikTok", ("tiktok",), _words("tiktok")),
    _Provider("Uber", ("uber",), _words("uber")),
    _Provider("Discord", ("discord",), _words("discord")),
    _Provider("Viber", ("viber",), _words("viber")),
    _Provider("Signal", ("signal",), _words("signal")),
    _Provider("LinkedIn", ("linkedin",), _words("linkedin")),
    _Provider("PayPal", ("paypal",), _words("paypal")),
    _Provider("Netflix", ("netflix",), _words("netflix")),
    _Provider("Snapchat", ("snapchat",), _words("snapchat")),
    _Provider("Yandex", ("yandex",), _words("yandex", "яндекс")),
    _Provider("VK", ("vk", "vkontakte"), _words("vk", "vkontakte", "вконтакте")),
    _Provider("WeChat", ("wechat", "weixin"), _words("wechat", "微信")),
    _Provider("Tinder", ("tinder",), _words("tinder")),
    _Provider("Airbnb", ("airbnb",), _words("airbnb")),
    _Provider("Binance", ("binance",), _words("binance")),
    _Provider("Coinbase", ("coinbase",), _words("coinbase")),
    _Provider("Steam", ("steam",), _words("steam")),
    _Provider("Yahoo", ("yahoo",), _words("yahoo")),
    _Provider("Line", ("line",), _words("line corporation", "line app")),
    _Provider("Bolt", ("bolt",), _words("bolt")),
    _Provider("Revolut", ("revolut",), _words("revolut")),
)  # fmt: skip


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.digit(c)) if c.isdigit() else c for c in text)


def recognise_provider(sender: str, text: str) -> str:
    wanted = re.sub(r"[\s_.\-]", "", sender).lower()
    for p in _PROVIDERS:
        if wanted in p.senders:
            return p.name
    first: tuple[int, str] | None = None
    for p in _PROVIDERS:
        m = p.words.search(text)
        if m is not None and (first is None or m.start() < first[0]):
            first = (m.start(), p.name)
    if first is None:
        for p in _PROVIDERS:
            if p.code is not None and p.code.search(text):
                return p.name
        return sender
    return first[1]


def _is_excluded(text: str, start: int, end: int, digits: str) -> bool:
    before = text[max(0, start - 16) : start]
    after = text[end : end + 12]
    if _CURRENCY_BEFORE.search(before) or _CURRENCY_AFTER.search(after):
        return True
    if _NOT_CODE_BEFORE.search(before):
        return True
    # Part of a phone number written in groups: "+1 800 555 1234", "(0800) 123 4567".
    around = text[max(0, start - 20) : min(len(text), end + 20)]
    for m in re.finditer(r"[+(]?\d[\d\s().\-]{6,}\d", around):
        span_start = max(0, start - 20) + m.start()
        span_end = max(0, start - 20) + m.end()
        if span_start <= start and end <= span_end:
            group_digits = re.sub(r"\D", "", m.group())
            longer = len(group_digits) > len(digits)
            if longer and (len(group_digits) > 8 or m.group().startswith(("+", "("))):
                return True
    return False


def extract_code(text: str, sender: str = "") -> str | None:
    """The OTP in `text`, digits only; None when there is none (or none clearly)."""
    text = _ascii_digits(text)
    for p in _PROVIDERS:
        if p.code is not None:
            m = p.code.search(text)
            if m is not None:
                return re.sub(r"\D", "", m.group(1))
    keywords = [(m.start(), m.end()) for m in _KEYWORD_RE.finditer(text)]
    if not keywords:
        return None
    ranked: list[tuple[int, int, str]] = []  # (distance, -length, code)
    for m in _CANDIDATE.finditer(text):
        raw = m.group("code")
        digits = re.sub(r"\D", "", raw)
        start, end = m.start("code"), m.end("code")
        if not 4 <= len(digits) <= 8 or _is_excluded(text, start, end, digits):
            continue
        if _YEAR.match(digits) and m.group("prefix") is None and len(keywords) != 1:
            # A bare year is a code only when it is the one thing a keyword points at.
            continue
        distance = min(max(0, start - k_end, k_start - end) for k_start, k_end in keywords)
        ranked.append((distance, -len(digits), digits))
    if not ranked:
        return None
    best = min(ranked)
    if best[0] <= _WINDOW or (len(ranked) == 1 and best[0] <= _LONE_WINDOW):
        return best[2]
    return None


def extract(text: str, sender: str) -> Extracted:
    return Extracted(extract_code(text, sender), recognise_provider(sender, text))
