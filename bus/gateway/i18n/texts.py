"""The texts of the pages a person reads, in Uzbek (Latin script), Russian and English.

One entry per text: ``key`` → ``{"uz": …, "ru": …, "en": …}``, plain text (pages escape it)
with ``{name}`` placeholders filled by the page. Keys are grouped by page: ``frame.`` (every
page), ``verify.`` and ``signature.`` (``/verify``), ``document.`` (``/v1/documents``),
``report.`` (the citizen's access report), ``inbox.`` (the operator inbox, in
``bus.gateway.i18n.inbox_texts``). ``tests/bus/gateway/test_i18n.py`` checks every entry has
the three languages and the same placeholders in each.
"""

from __future__ import annotations

from bus.gateway.i18n.inbox_texts import INBOX_TEXTS

__all__ = ["TEXTS"]

_PAGES: dict[str, dict[str, str]] = {
    # the frame of every page (bus.gateway.html.page)
    "frame.skip": {
        "uz": "Asosiy qismga o‘tish",
        "ru": "Перейти к содержанию",
        "en": "Skip to the content",
    },
    "frame.site": {
        "uz": "Idoralararo ma’lumot almashish tizimi",
        "ru": "Межведомственная шина обмена данными",
        "en": "Interagency data-exchange bus",
    },
    "frame.languages": {"uz": "Til", "ru": "Язык", "en": "Language"},
    # /verify and /verify/{number}
    "verify.title": {
        "uz": "Hujjatni tekshirish",
        "ru": "Проверить документ",
        "en": "Check a document",
    },
    "verify.intro": {
        "uz": "Hujjatda bosilgan so‘rov raqamini kiriting: uni kim va qachon bergani hamda "
              "imzosi hali ham haqiqiyligini ko‘rasiz. Hujjatdagi QR kodni skanerlash ham shu "
              "sahifani ochadi.",
        "ru": "Введите номер запроса, напечатанный на документе, чтобы узнать, кто и когда его "
              "выдал и действительна ли ещё его подпись. Сканирование QR-кода открывает ту же "
              "страницу.",
        "en": "Type the request number printed on the document to see who issued it, when, "
              "and whether its signature still stands. Scanning its QR code opens the same "
              "page.",
    },
    "verify.number": {"uz": "So‘rov raqami", "ru": "Номер запроса", "en": "Request number"},
    "verify.number_hint": {
        "uz": "hujjatda bosilganidek, masalan {example}",
        "ru": "как напечатано на документе, например {example}",
        "en": "as printed on the document, e.g. {example}",
    },
    "verify.check": {"uz": "Tekshirish", "ru": "Проверить", "en": "Check"},
    "verify.none": {"uz": "Bunday hujjat yo‘q", "ru": "Документ не найден",
                    "en": "No such document"},
    "verify.malformed": {
        "uz": "Bu so‘rov raqami emas (u {example} kabi bo‘ladi).",
        "ru": "Это не номер запроса (он выглядит как {example}).",
        "en": "This is not a request number (like {example}).",
    },
    "verify.mistyped": {
        "uz": "Nazorat raqami mos kelmadi: raqam xato kiritilgan.",
        "ru": "Контрольная цифра не совпадает: номер введён с ошибкой.",
        "en": "The check digit does not match: the number is mistyped.",
    },
    "verify.unknown": {
        "uz": "Bu yerda {number} raqamli hujjat berilmagan.",
        "ru": "Документ {number} здесь не выдавался.",
        "en": "No document {number} was issued here.",
    },
    "verify.asked": {"uz": "Kiritilgan raqam:", "ru": "Запрошенный номер:",
                     "en": "Number asked:"},
    "verify.again": {
        "uz": "Raqamni qayta tekshiring",
        "ru": "Проверьте номер ещё раз",
        "en": "Check the number again",
    },
    "verify.document": {"uz": "Hujjat {number}", "ru": "Документ {number}",
                        "en": "Document {number}"},
    "verify.service": {"uz": "Xizmat", "ru": "Услуга", "en": "Service"},
    "verify.issued_by": {"uz": "Bergan idora", "ru": "Кем выдан", "en": "Issued by"},
    "verify.requested_by": {"uz": "So‘ragan idora", "ru": "Кем запрошен",
                            "en": "Requested by"},
    "verify.issued_at": {"uz": "Berilgan vaqti", "ru": "Когда выдан", "en": "Issued at"},
    "verify.signature_now": {
        "uz": "Imzo (hozir tekshirildi)",
        "ru": "Подпись (проверена сейчас)",
        "en": "Signature (checked now)",
    },
    "verify.fingerprint": {
        "uz": "Hujjatning barmoq izi (SHA-256)",
        "ru": "Отпечаток документа (SHA-256)",
        "en": "Document fingerprint (SHA-256)",
    },
    "verify.certificate": {"uz": "Sertifikat", "ru": "Сертификат", "en": "Certificate"},
    "verify.valid_until": {"uz": "amal qilish muddati:", "ru": "действителен до",
                           "en": "valid until"},
    "verify.explain": {
        "uz": "Bu sahifa hujjatni kim berganini va imzosi hali ham tasdiqlanishini "
              "ko‘rsatadi; hujjat mazmuni faqat u berilgan kishiga ko‘rsatiladi. Barmoq izini "
              "hujjatda bosilgani bilan solishtiring.",
        "ru": "Эта страница показывает, кто выдал документ и действительна ли ещё его "
              "подпись; содержание документа показывается только тому, кому он выдан. "
              "Сравните отпечаток с напечатанным на документе.",
        "en": "This page shows who issued the document and whether its signature still "
              "verifies; the document's content is shown only to whom it was issued. Compare "
              "the fingerprint with the one printed on the document.",
    },
    # the state of a document's signature
    "signature.valid": {"uz": "haqiqiy", "ru": "действительна", "en": "valid"},
    "signature.revoked": {"uz": "BEKOR QILINGAN", "ru": "ОТОЗВАНА", "en": "REVOKED"},
    "signature.untrusted": {"uz": "ISHONCHSIZ", "ru": "НЕ ДОВЕРЕНА", "en": "NOT TRUSTED"},
    "signature.purged": {"uz": "endi saqlanmaydi", "ru": "больше не хранится",
                         "en": "no longer kept"},
    "signature.invalid": {"uz": "YAROQSIZ", "ru": "НЕДЕЙСТВИТЕЛЬНА", "en": "INVALID"},
    "signature.signed_by": {
        "uz": "{signer} tomonidan {kid} kaliti bilan imzolangan",
        "ru": "подписано {signer} ключом {kid}",
        "en": "signed by {signer} with {kid}",
    },
    "signature.expired_since": {
        "uz": "sertifikat muddati keyin tugagan; imzo u amalda bo‘lgan paytda qo‘yilgan",
        "ru": "срок сертификата с тех пор истёк; подпись сделана, когда он был действителен",
        "en": "the certificate has expired since; the signature was made while it was valid",
    },
    "signature.deleted": {
        "uz": "imzolangan javob saqlash muddati o‘tgach {date} kuni o‘chirilgan; uni qo‘lida "
              "saqlagan kishi hali ham tekshira oladi (barmoq izini solishtiring)",
        "ru": "подписанный ответ удалён {date} по истечении срока хранения; его владелец "
              "по-прежнему может его проверить (сравните отпечаток)",
        "en": "the signed answer was deleted on {date} after the retention period; its holder "
              "can still verify it (compare the fingerprint)",
    },
    # /v1/documents/{number}
    "document.data": {"uz": "Ma’lumotlar", "ru": "Данные", "en": "Data"},
    "document.verification": {"uz": "Tekshirish", "ru": "Проверка", "en": "Verification"},
    "document.signature": {"uz": "Imzo", "ru": "Подпись", "en": "Signature"},
    "document.fingerprint": {
        "uz": "Barmoq izi (SHA-256)",
        "ru": "Отпечаток (SHA-256)",
        "en": "Fingerprint (SHA-256)",
    },
    "document.verify_at": {"uz": "Tekshirish manzili", "ru": "Проверить по адресу",
                           "en": "Verify at"},
    "document.qr": {"uz": "QR kod: {url}", "ru": "QR-код: {url}", "en": "QR code: {url}"},
    "document.footer": {
        "uz": "Idoralararo ma’lumot almashish tizimi orqali muhr o‘rniga elektron imzo bilan "
              "berilgan. Tekshirish uchun kodni skanerlang yoki manzilni oching.",
        "ru": "Выдан через межведомственную шину обмена данными с электронной подписью вместо "
              "печати. Чтобы проверить его, отсканируйте код или откройте адрес.",
        "en": "Issued through the interagency data-exchange bus with a digital signature "
              "instead of a seal. Scan the code or open the address to check it.",
    },
    # GET /v1/citizens/me/access-log as a page
    "report.title": {
        "uz": "Men haqimdagi ma’lumotlarni kim olgan",
        "ru": "Кто получал сведения обо мне",
        "en": "Who obtained data about me",
    },
    "report.intro": {
        "uz": "Idoralar ushbu tizim orqali siz ({subject}) haqingizda ma’lumot olgan har bir "
              "holat, eng yangisi birinchi. Yozuvlar soni: {count}.",
        "ru": "Каждый случай, когда ведомство получало сведения о вас ({subject}) через шину, "
              "начиная с последнего. Записей: {count}.",
        "en": "Every time an agency obtained data about you ({subject}) through the bus, the "
              "newest first. Entries: {count}.",
    },
    "report.none": {
        "uz": "Hech bir idora ushbu tizim orqali siz haqingizda ma’lumot olmagan.",
        "ru": "Ни одно ведомство не получало сведений о вас через шину.",
        "en": "No agency has obtained data about you through the bus.",
    },
    "report.zone": {
        "uz": "Vaqtlar {zone} vaqti bo‘yicha ({offset}).",
        "ru": "Время указано по поясу {zone} ({offset}).",
        "en": "Times are in {zone} time ({offset}).",
    },
    "report.when": {"uz": "Qachon", "ru": "Когда", "en": "When"},
    "report.agency": {"uz": "Idora", "ru": "Ведомство", "en": "Agency"},
    "report.official": {"uz": "Xodim", "ru": "Сотрудник", "en": "Official"},
    "report.purpose": {"uz": "Maqsad", "ru": "Цель", "en": "Purpose"},
    "report.service": {"uz": "Xizmat", "ru": "Услуга", "en": "Service"},
    "report.from": {"uz": "ma’lumot beruvchi: {provider}", "ru": "поставщик: {provider}",
                    "en": "from {provider}"},
}

TEXTS: dict[str, dict[str, str]] = {**_PAGES, **INBOX_TEXTS}
