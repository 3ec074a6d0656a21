"""The texts of the operator inbox (``/inbox``) in Uzbek (Latin script), Russian and English.

Part of ``bus.gateway.i18n.texts`` (same form: plain text with ``{name}`` placeholders); kept
apart because the inbox has the most of them.
"""

from __future__ import annotations

__all__ = ["INBOX_TEXTS"]

INBOX_TEXTS: dict[str, dict[str, str]] = {
    "inbox.title": {"uz": "Operator kiruvchi qutisi", "ru": "Входящие оператора",
                    "en": "Operator inbox"},
    "inbox.nav": {"uz": "Kiruvchi ({count} kutmoqda)", "ru": "Входящие (ожидают: {count})",
                  "en": "Inbox ({count} waiting)"},
    "inbox.signed_in_as": {"uz": "Tizimga kirgan:", "ru": "Вы вошли как", "en": "Signed in as"},
    "inbox.sign_out": {"uz": "Chiqish", "ru": "Выйти", "en": "Sign out"},
    "inbox.sign_in": {"uz": "Kirish", "ru": "Войти", "en": "Sign in"},
    "inbox.sign_in_heading": {
        "uz": "Operator kiruvchi qutisiga kirish",
        "ru": "Вход во входящие оператора",
        "en": "Sign in to the operator inbox",
    },
    "inbox.sign_in_intro": {
        "uz": "Bu yerda idora xodimlari tizim o‘zi javob bera olmaydigan so‘rovlarga javob "
              "beradi. Administrator bergan nom va parol bilan kiring.",
        "ru": "Здесь сотрудники ведомства отвечают на запросы, на которые шина не может "
              "ответить сама. Войдите с именем и паролем, выданными администратором.",
        "en": "Officials of an agency answer here the requests the bus cannot answer by "
              "itself. Sign in with the name and password your administrator gave you.",
    },
    "inbox.name": {"uz": "Operator nomi", "ru": "Имя оператора", "en": "Operator name"},
    "inbox.password": {"uz": "Parol", "ru": "Пароль", "en": "Password"},
    "inbox.signed_out": {"uz": "Siz tizimdan chiqdingiz.", "ru": "Вы вышли.",
                         "en": "You are signed out."},
    "inbox.too_many": {
        "uz": "Noto‘g‘ri parol juda ko‘p kiritildi; {minutes} daqiqadan keyin qayta urinib "
              "ko‘ring.",
        "ru": "Слишком много неверных паролей; попробуйте снова через {minutes} мин.",
        "en": "Too many wrong passwords; try again in {minutes} minute(s).",
    },
    "inbox.wrong_password": {
        "uz": "Bu nom va parol ushbu tugunning hech bir operatoriga mos kelmaydi.",
        "ru": "Это имя и пароль не подходят ни одному оператору этого узла.",
        "en": "That name and password do not match an operator of this node.",
    },
    "inbox.heading": {"uz": "Sizni kutayotgan topshiriqlar", "ru": "Задачи, ожидающие вас",
                      "en": "Tasks waiting for you"},
    "inbox.count": {
        "uz": "Kutayotgan topshiriqlar: {count}, eng yaqin muddatlisi birinchi. Vaqtlar {zone} "
              "vaqti bo‘yicha ({offset}).",
        "ru": "Ожидают задач: {count}, сначала с ближайшим сроком. Время указано по поясу "
              "{zone} ({offset}).",
        "en": "{count} task(s) waiting, the soonest deadline first. Times are in {zone} time "
              "({offset}).",
    },
    "inbox.nothing": {
        "uz": "Sizni hech narsa kutmayapti. Yangi so‘rovlar kelishi bilan shu yerda paydo "
              "bo‘ladi.",
        "ru": "Вас ничего не ждёт. Новые запросы появятся здесь, как только поступят.",
        "en": "Nothing is waiting for you. New requests appear here as they come.",
    },
    "inbox.caption": {
        "uz": "Kutayotgan topshiriqlar, eng yaqin muddatlisi birinchi",
        "ru": "Ожидающие задачи, сначала с ближайшим сроком",
        "en": "Tasks waiting, soonest deadline first",
    },
    "inbox.task_sr": {"uz": "(topshiriq {task})", "ru": "(задача {task})", "en": "(task {task})"},
    "inbox.done": {
        "uz": "{task}… topshirig‘i yopildi; imzolangan javob so‘rovchiga yuborilmoqda.",
        "ru": "Задача {task}… закрыта; подписанный ответ отправляется запросившему.",
        "en": "Task {task}… is closed; the signed answer is on its way to the asker.",
    },
    "inbox.kept": {
        "uz": "{task}… topshirig‘i yopildi; tizim javobni hozir yetkaza olmaydi va uni "
              "saqlab turadi: imkon bo‘lishi bilan yuboriladi.",
        "ru": "Задача {task}… закрыта; шина не может доставить ответ сейчас и хранит его: он "
              "уйдёт, как только сможет.",
        "en": "Task {task}… is closed; the bus cannot deliver its answer right now and keeps "
              "it: it goes out as soon as it can.",
    },
    "inbox.back": {"uz": "← Kiruvchi qutiga qaytish", "ru": "← Назад во входящие",
                   "en": "← Back to the inbox"},
    "inbox.task": {"uz": "Topshiriq", "ru": "Задача", "en": "Task"},
    "inbox.asked_by": {"uz": "So‘ragan idora", "ru": "Кто запросил", "en": "Asked by"},
    "inbox.their_official": {"uz": "Ularning xodimi", "ru": "Их сотрудник",
                             "en": "Their official"},
    "inbox.purpose": {"uz": "Maqsad", "ru": "Цель", "en": "Purpose"},
    "inbox.filed": {"uz": "Kelib tushgan", "ru": "Поступила", "en": "Filed"},
    "inbox.answer_by": {"uz": "Javob muddati", "ru": "Ответить до", "en": "Answer by"},
    "inbox.service": {"uz": "Xizmat", "ru": "Услуга", "en": "Service"},
    "inbox.state": {"uz": "Holati", "ru": "Состояние", "en": "State"},
    "inbox.closed_by": {"uz": "Kim yopgan", "ru": "Кем закрыта", "en": "Closed by"},
    "inbox.instructions": {"uz": "Ko‘rsatma", "ru": "Указания", "en": "Instructions"},
    "inbox.what_they_ask": {"uz": "Ular nimani so‘rayapti", "ru": "Что запрашивают",
                            "en": "What they ask"},
    "inbox.the_task": {"uz": "Topshiriq", "ru": "Задача", "en": "The task"},
    "inbox.the_request": {"uz": "So‘rov", "ru": "Запрос", "en": "The request"},
    "inbox.closed": {
        "uz": "Bu topshiriq yopilgan; bu yerda boshqa qiladigan ish yo‘q.",
        "ru": "Эта задача закрыта; здесь больше нечего делать.",
        "en": "This task is closed; there is nothing more to do here.",
    },
    "inbox.state.open": {"uz": "ochiq", "ru": "открыта", "en": "open"},
    "inbox.state.sending": {"uz": "yuborilmoqda", "ru": "отправляется", "en": "sending"},
    "inbox.state.audited": {"uz": "yozib qo‘yildi", "ru": "записана", "en": "audited"},
    "inbox.state.answered": {"uz": "javob berilgan", "ru": "отвечена", "en": "answered"},
    "inbox.state.rejected": {"uz": "rad etilgan", "ru": "отклонена", "en": "rejected"},
    "inbox.state.expired": {"uz": "muddati o‘tgan", "ru": "просрочена", "en": "expired"},
    "inbox.answered_by_you": {
        "uz": "Bu topshiriqqa siz allaqachon javob bergansiz; to‘ldirganingiz yuborilmadi.",
        "ru": "Вы уже ответили на эту задачу; заполненное вами не отправлено.",
        "en": "This task was already answered by you; what you filled in was not sent.",
    },
    "inbox.rejected_by_you": {
        "uz": "Bu topshiriqni siz allaqachon rad etgansiz; to‘ldirganingiz yuborilmadi.",
        "ru": "Вы уже отклонили эту задачу; заполненное вами не отправлено.",
        "en": "This task was already rejected by you; what you filled in was not sent.",
    },
    "inbox.answered_by": {
        "uz": "Bu topshiriqqa {who} allaqachon javob bergan; to‘ldirganingiz yuborilmadi.",
        "ru": "На эту задачу уже ответил(а) {who}; заполненное вами не отправлено.",
        "en": "This task was already answered by {who}; what you filled in was not sent.",
    },
    "inbox.rejected_by": {
        "uz": "Bu topshiriqni {who} allaqachon rad etgan; to‘ldirganingiz yuborilmadi.",
        "ru": "Эту задачу уже отклонил(а) {who}; заполненное вами не отправлено.",
        "en": "This task was already rejected by {who}; what you filled in was not sent.",
    },
    "inbox.expired": {"uz": "muddati o‘tgan", "ru": "срок истёк", "en": "expired"},
    "inbox.left_day": {
        "uz": "{days} kun {hours} soat qoldi",
        "ru": "осталось {days} дн. {hours} ч",
        "en": "{days} day {hours} h left",
    },
    "inbox.left_days": {
        "uz": "{days} kun {hours} soat qoldi",
        "ru": "осталось {days} дн. {hours} ч",
        "en": "{days} days {hours} h left",
    },
    "inbox.left_hours": {
        "uz": "{hours} soat {minutes} daqiqa qoldi",
        "ru": "осталось {hours} ч {minutes} мин",
        "en": "{hours} h {minutes} min left",
    },
    "inbox.left_minutes": {
        "uz": "{minutes} daqiqa qoldi",
        "ru": "осталось {minutes} мин",
        "en": "{minutes} min left",
    },
    "inbox.answer": {"uz": "Javob", "ru": "Ответ", "en": "Answer"},
    "inbox.send_answer": {
        "uz": "Javobni imzolab yuborish",
        "ru": "Подписать и отправить ответ",
        "en": "Sign and send the answer",
    },
    "inbox.or_reject": {"uz": "Yoki rad etish", "ru": "Или отклонить", "en": "Or reject"},
    "inbox.why": {"uz": "Sababi", "ru": "Причина", "en": "Why"},
    "inbox.no_data": {
        "uz": "Bizning yozuvlarimizda bu shaxs haqida hech narsa yo‘q (no-data)",
        "ru": "В наших записях нет сведений об этом лице (no-data)",
        "en": "Nothing about this person in our records (no-data)",
    },
    "inbox.cannot_serve": {
        "uz": "So‘rovni bajarib bo‘lmaydi",
        "ru": "Запрос не может быть выполнен",
        "en": "The request cannot be served",
    },
    "inbox.reason": {
        "uz": "So‘rovchiga aytiladigan sabab (majburiy)",
        "ru": "Причина для запросившего (обязательно)",
        "en": "Reason told to the asker (required)",
    },
    "inbox.reason_hint": {
        "uz": "Nimani tekshirganingizni shaxsiy ma’lumotlarsiz yozing.",
        "ru": "Укажите, что вы проверили, без персональных данных.",
        "en": "Say what you looked at, without personal data.",
    },
    "inbox.reason_missing": {
        "uz": "So‘rovchi o‘qiydigan sababni yozing; hech narsa yuborilmadi.",
        "ru": "Напишите причину, которую прочтёт запросивший; ничего не отправлено.",
        "en": "Write the reason the asker will read; nothing was sent.",
    },
    "inbox.send_refusal": {
        "uz": "Rad javobini imzolab yuborish",
        "ru": "Подписать и отправить отказ",
        "en": "Sign and send the refusal",
    },
}
