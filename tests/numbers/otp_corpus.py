# ruff: noqa: RUF001, E501 - the corpus is real-world text, one message a line
"""Real-world-shaped SMS for OTP extraction: (sender, text, expected code, provider).

Shapes follow what the named services send (wording, digits, prefixes); the codes
are made up. `None` as the code: the message holds no OTP (an extractor that finds
one is a false positive). Provider `None`: the sender id is expected back.
"""

from __future__ import annotations

CORPUS: list[tuple[str, str, str | None, str | None]] = [
    # English, the big names
    ("Google", "G-482913 is your Google verification code.", "482913", "Google"),
    ("22000", "G-105522 is your Google verification code. Don't share it.", "105522", "Google"),
    ("WhatsApp", "Your WhatsApp code: 318-204\n\nDon't share this code with others", "318204", "WhatsApp"),
    ("12345", "WhatsApp code 771-093. You can also tap on this link to verify your phone: v.whatsapp.com/771093", "771093", "WhatsApp"),
    ("Telegram", "Telegram code: 58213\n\nYou can also tap on this link to log in:\nhttps://t.me/login/58213", "58213", "Telegram"),
    ("Telegram", "Login code: 90417. Do not give this code to anyone, even if they say they are from Telegram!", "90417", "Telegram"),
    ("FACEBOOK", "FB-62318 is your Facebook confirmation code", "62318", "Facebook"),
    ("32665", "123456 is your Facebook code. Laz+nxCarLW", "123456", "Facebook"),
    ("Microsoft", "Use 2918344 as Microsoft account security code", "2918344", "Microsoft"),
    ("Apple", "Your Apple ID Code is: 530187. Don't share it with anyone.", "530187", "Apple"),
    ("AMAZON", "729301 is your Amazon OTP. Do not share it with anyone.", "729301", "Amazon"),
    ("Instagram", "Use 391 027 to verify your Instagram account.", "391027", "Instagram"),
    ("Uber", "Your Uber code: 4821. Never share this code.", "4821", "Uber"),
    ("TikTok", "[TikTok] 381920 is your verification code, valid for 5 minutes. To keep your account safe, never forward this code.", "381920", "TikTok"),
    ("Discord", "Your Discord security code is: 775102", "775102", "Discord"),
    ("PayPal", "PayPal: Your security code is 204918. Your code expires in 10 minutes. Please don't reply.", "204918", "PayPal"),
    ("Netflix", "Your Netflix verification code is 8830. It expires in 15 minutes.", "8830", "Netflix"),
    ("LinkedIn", "Your LinkedIn verification code is 663901.", "663901", "LinkedIn"),
    ("Twitter", "Your Twitter confirmation code is 447210.", "447210", "Twitter"),
    ("Steam", "Your Steam Guard code is: 52871", "52871", "Steam"),
    ("Viber", "Your Viber code: 3818", "3818", "Viber"),
    ("Signal", "Your Signal code: 184-302 Do not share this code", "184302", "Signal"),
    ("Binance", "[Binance] Your verification code is 639104. Do not share your code with anyone.", "639104", "Binance"),
    ("Airbnb", "Your Airbnb verification code is: 4471. Don't share this code with anyone.", "4471", "Airbnb"),
    ("Yahoo", "Your Yahoo verification code is 55102938", "55102938", "Yahoo"),
    ("Bolt", "Bolt code: 6172. Don't share it.", "6172", "Bolt"),
    ("Revolut", "Your Revolut code is 901-277. Never share it with anyone, even Revolut staff.", "901277", "Revolut"),
    ("ACMEBANK", "Your one-time password is 738201. Valid for 3 min. Never share it.", "738201", None),
    ("MyShop", "Use OTP 55210 to complete your purchase of $49.99 at MyShop.", "55210", None),
    ("Verify", "Your verification PIN: 9021", "9021", None),
    # German, Dutch, Scandinavian
    ("Google", "G-772910 ist dein Bestätigungscode von Google.", "772910", "Google"),
    ("DHL", "Ihr Code lautet 5531. Gültig bis 12.05.2024 um 18:00 Uhr.", "5531", None),
    ("N26", "Dein N26 Sicherheitscode: 480193. Teile ihn mit niemandem.", "480193", None),
    ("bunq", "Je verificatiecode is 288104", "288104", None),
    ("BankID", "Din engangskode er 661 930", "661930", None),
    # Turkish, Polish, Czech
    ("Getir", "Getir doğrulama kodunuz: 8412", "8412", None),
    ("Trendyol", "Trendyol hesabınız için tek kullanımlık şifre: 553019", "553019", None),
    ("Allegro", "Twój kod weryfikacyjny Allegro to 492018", "492018", None),
    ("mBank", "Kod SMS: 73019112 do operacji przelew 250,00 PLN na rachunek 12 1140 2004 0000 3502 7654 3210", "73019112", None),
    ("Seznam", "Váš ověřovací kód je 6613", "6613", None),
    # Spanish, Portuguese, Italian, French
    ("WhatsApp", "Tu código de WhatsApp: 402-991. No compartas este código con nadie.", "402991", "WhatsApp"),
    ("Rappi", "Tu código de verificación Rappi es 3819", "3819", None),
    ("iFood", "Seu código de verificação iFood é 882014. Não compartilhe.", "882014", None),
    ("Nubank", "Nubank: o seu código de segurança é 501-273", "501273", None),
    ("Poste", "Il codice di verifica è 77120. Non comunicarlo a nessuno.", "77120", None),
    ("Leboncoin", "Votre code de vérification est 662 018. Il expire dans 10 minutes.", "662018", None),
    ("Orange", "Votre code Orange : 4419. Ne le communiquez à personne.", "4419", None),
    # Russian, Ukrainian
    ("Telegram", "Код для входа в Telegram: 71502. Никому не давайте код, даже если его требуют от имени Telegram!", "71502", "Telegram"),
    ("Yandex", "Ваш код подтверждения: 4418. Наберите его в поле ввода.", "4418", "Yandex"),
    ("VK", "Код подтверждения VK: 993011", "993011", "VK"),
    ("Sber", "Пароль для входа в СберБанк Онлайн: 60312. Никому не сообщайте его.", "60312", None),
    ("Monobank", "Ваш код: 3019. Нікому не повідомляйте цей код.", "3019", None),
    # Arabic, Persian, Hebrew
    ("STC", "رمز التحقق الخاص بك هو 482019", "482019", None),
    ("Careem", "رمز التحقق: ٤٨٢١ لا تشاركه مع أحد", "4821", None),
    ("Snapp", "کد تایید اسنپ: 55812", "55812", None),
    ("Wolt", "קוד האימות שלך הוא 6620", "6620", None),
    # Chinese, Japanese, Korean, Vietnamese, Indonesian, Hindi
    ("Taobao", "【淘宝】验证码384910，您正在登录，若非本人操作，请勿泄露。", "384910", None),
    ("WeChat", "【微信】您的验证码是 551023，5分钟内有效。", "551023", "WeChat"),
    ("LINE", "LINE認証番号：7719 認証コードを他人に教えないでください。", "7719", "Line"),
    ("Kakao", "[카카오] 인증번호 [482913]를 입력해주세요.", "482913", None),
    ("Zalo", "Ma xac thuc Zalo cua ban la 4417", "4417", None),
    ("Gojek", "JANGAN BERIKAN kode ini ke siapa pun. Kode verifikasi GOJEK: 6618", "6618", None),
    ("Flipkart", "आपका OTP 718293 है। इसे किसी के साथ साझा न करें।", "718293", None),
    # No OTP: phone numbers, dates, amounts, order numbers, plain chat
    ("ACMEBANK", "Your card ending 4821 was charged $1,250.00 at STORE 1182 on 12/05/2024.", None, None),
    ("DHL", "Your parcel 48213 will arrive on 2024-05-14 between 10:00 and 14:00. Call 0800 123 4567.", None, None),
    ("+447700900123", "Hi! Are we still on for 7pm? My new number is +44 7700 900456", None, None),
    ("Shop", "Order #552019 confirmed. Total: 1299 RUB. Thank you!", None, None),
    ("Bank", "Balance: EUR 4830.55 on 03.06.2024", None, None),
    ("+15551234567", "Call me back at 555-123-4567 please", None, None),
    ("Promo", "SALE! 50% off until 31.12. Visit shop.example or call 1800 2000 300", None, None),
    ("Operator", "You have used 2048 MB of your 5000 MB data allowance.", None, None),
]  # fmt: skip
