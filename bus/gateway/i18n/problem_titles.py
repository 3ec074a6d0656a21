"""The titles of the bus's problems in Uzbek (Latin script) and Russian, by problem ``code``.

English is each error class's own ``title`` (``bus.core.errors``, ``schemas.errors``): the
problem documents, SOAP faults and logs have always carried it. A test checks every code of the
error tree is here in both languages.
"""

from __future__ import annotations

__all__ = ["PROBLEM_TITLES"]

PROBLEM_TITLES: dict[str, dict[str, str]] = {
    "bus-error": {"uz": "Tizim xatosi", "ru": "Ошибка шины"},
    "request-refused": {"uz": "So‘rov rad etildi", "ru": "Запрос отклонён"},
    "malformed-request": {"uz": "So‘rov noto‘g‘ri tuzilgan", "ru": "Неверно составленный запрос"},
    "must-understand": {"uz": "SOAP sarlavhasi tushunilmadi", "ru": "Заголовок SOAP не понят"},
    "async-required": {
        "uz": "Bu xizmat javobni keyinroq beradi (asinxron)",
        "ru": "Эта служба отвечает асинхронно",
    },
    "unauthenticated": {
        "uz": "API tokeni yo‘q yoki noto‘g‘ri",
        "ru": "API-токен отсутствует или неверен",
    },
    "access-denied": {"uz": "Kirish taqiqlangan", "ru": "Доступ запрещён"},
    "unknown-service": {"uz": "Noma’lum xizmat", "ru": "Неизвестная служба"},
    "unknown-document": {"uz": "Noma’lum hujjat", "ru": "Неизвестный документ"},
    "document-purged": {
        "uz": "Hujjat saqlash muddati o‘tgach o‘chirilgan",
        "ru": "Документ удалён по истечении срока хранения",
    },
    "task-closed": {"uz": "Topshiriq yopilgan", "ru": "Задача закрыта"},
    "callback-refused": {
        "uz": "Qayta chaqiruv manziliga ruxsat yo‘q",
        "ru": "Адрес обратного вызова не разрешён",
    },
    "payload-too-large": {"uz": "So‘rov hajmi juda katta", "ru": "Слишком большой запрос"},
    "unsupported-media-type": {
        "uz": "Qo‘llab-quvvatlanmaydigan ma’lumot turi",
        "ru": "Неподдерживаемый тип данных",
    },
    "request-timeout": {
        "uz": "So‘rov tanasi juda sekin keldi",
        "ru": "Тело запроса поступало слишком медленно",
    },
    "method-not-allowed": {"uz": "Usulga ruxsat yo‘q", "ru": "Метод не разрешён"},
    "schema-invalid": {
        "uz": "So‘rov xizmat sxemasiga mos emas",
        "ru": "Запрос не соответствует схеме службы",
    },
    "signature-invalid": {"uz": "Imzo yaroqsiz", "ru": "Подпись недействительна"},
    "certificate-untrusted": {
        "uz": "Imzolovchining sertifikatiga ishonilmaydi",
        "ru": "Сертификату подписавшего не доверяют",
    },
    "certificate-revoked": {
        "uz": "Imzolovchining sertifikati bekor qilingan",
        "ru": "Сертификат подписавшего отозван",
    },
    "replayed": {"uz": "Konvert qayta yuborilgan", "ru": "Конверт отправлен повторно"},
    "idempotency-key-in-use": {
        "uz": "Idempotentlik kaliti band",
        "ru": "Ключ идемпотентности занят",
    },
    "idempotency-key-reused": {
        "uz": "Idempotentlik kaliti boshqa so‘rov uchun ishlatilgan",
        "ru": "Ключ идемпотентности использован повторно",
    },
    "rate-limited": {"uz": "So‘rovlar juda ko‘p", "ru": "Слишком много запросов"},
    "expired": {"uz": "Konvert muddati o‘tgan", "ru": "Срок действия конверта истёк"},
    "provider-error": {"uz": "Ma’lumot beruvchi xatosi", "ru": "Ошибка поставщика данных"},
    "provider-unavailable": {
        "uz": "Ma’lumot beruvchi ishlamayapti",
        "ru": "Поставщик данных недоступен",
    },
    "circuit-open": {
        "uz": "Ma’lumot beruvchi nosoz; murojaatlar vaqtincha to‘xtatilgan",
        "ru": "Поставщик данных неисправен; обращения временно приостановлены",
    },
    "provider-timeout": {
        "uz": "Ma’lumot beruvchi o‘z vaqtida javob bermadi",
        "ru": "Поставщик данных не ответил вовремя",
    },
    "provider-rejected": {
        "uz": "Ma’lumot beruvchi so‘rovni rad etdi",
        "ru": "Поставщик данных отклонил запрос",
    },
    "provider-invalid-answer": {
        "uz": "Ma’lumot beruvchining javobi umumiy sxemaga mos emas",
        "ru": "Ответ поставщика данных не соответствует общей схеме",
    },
    "no-data": {
        "uz": "Ma’lumot beruvchida bu shaxs haqida ma’lumot yo‘q",
        "ru": "У поставщика данных нет сведений об этом лице",
    },
    "deadline-exceeded": {"uz": "Kutish muddati tugadi", "ru": "Срок ожидания истёк"},
    "bus-unavailable": {"uz": "Tizim ishlamayapti", "ru": "Шина недоступна"},
}
