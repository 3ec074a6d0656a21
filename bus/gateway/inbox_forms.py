"""The pieces of the operator inbox's pages (``bus.gateway.inbox``): how long is left to answer,
the answer and reject forms, and the page of a refused request — in the page's language
(``bus.gateway.i18n``)."""

from __future__ import annotations

import datetime as dt
import html
from urllib.parse import quote

from starlette.responses import Response

from bus.core.errors import BusError
from bus.gateway.html import page
from bus.gateway.i18n import Lang, problem_title
from bus.gateway.schema_form import SchemaForm
from bus.inbox.store import Task

__all__ = ["answer_form", "challenge_response", "reject_form", "time_left"]


def time_left(task: Task, now: dt.datetime, lang: Lang) -> str:
    """How long is left to answer, as an official reads it: ``2 days 23 h``, ``1 h 59 min``."""
    seconds = int(max(task.expires_at - now.timestamp(), 0))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if not seconds:
        return f"<b class='bad'>{lang.t('inbox.expired')}</b>"
    if days:
        return lang.t("inbox.left_days" if days > 1 else "inbox.left_day", days=days,
                      hours=hours)
    if hours:
        return lang.t("inbox.left_hours", hours=hours, minutes=minutes)
    return f"<b class='bad'>{lang.t('inbox.left_minutes', minutes=max(minutes, 1))}</b>"


def challenge_response(exc: BusError, lang: Lang | None = None) -> Response:
    """The page of a refused inbox request: its title in ``lang``, its detail as it is."""
    lang = lang or Lang("en")
    title = problem_title(exc.code, lang.code, exc.title)
    return page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(exc.detail)}</p>"
                f"<p><a href='/inbox{lang.query}'>{lang.t('inbox.back')}</a></p>", exc.status,
                lang=lang)


def answer_form(task_id: str, token: str, form: SchemaForm, typed: dict[str, str],
                 errors: dict[str, str], added: str, lang: Lang) -> str:
    return (
        f"<h2 id='answer'>{lang.t('inbox.answer')}</h2><form method='post' novalidate "
        f"action='/inbox/{quote(task_id)}/answer{lang.query}' aria-labelledby='answer'>"
        f"<input type='hidden' name='csrf' value='{token}'>"
        f"{form.render(typed, errors, added)}"
        f"<button type='submit'>{lang.t('inbox.send_answer')}</button></form>"
    )


def reject_form(task_id: str, token: str, lang: Lang, *, code: str = "no-data",
                missing: bool = False) -> str:
    """The refusal: why (a choice) and the reason the asker reads, which it needs: sent
    without one (``missing``), the form comes back with ``code`` kept and the error at the
    reason, which has the focus."""
    choices = (("no-data", "inbox.no_data"), ("provider-rejected", "inbox.cannot_serve"))
    options = "".join(
        f"<option value='{value}'{' selected' if value == code else ''}>{lang.t(key)}</option>"
        for value, key in choices)
    described, error, invalid = "detail-hint", "", ""
    if missing:
        described += " detail-error"
        error = f"<p class='error' id='detail-error'>{lang.t('inbox.reason_missing')}</p>"
        invalid = " aria-invalid='true' autofocus"
    return (
        f"<h2 id='reject'>{lang.t('inbox.or_reject')}</h2>"
        f"<form method='post' novalidate action='/inbox/{quote(task_id)}/reject{lang.query}' "
        "aria-labelledby='reject'>"
        f"<input type='hidden' name='csrf' value='{token}'>"
        f"<label for='code'>{lang.t('inbox.why')}</label>"
        f"<select id='code' name='code'>{options}</select>"
        f"<label for='detail'>{lang.t('inbox.reason')}"
        f"<span class='hint' id='detail-hint'>{lang.t('inbox.reason_hint')}</span>"
        f"</label>{error}<input id='detail' name='detail' maxlength='500' "
        f"aria-required='true' aria-describedby='{described}'{invalid}>"
        f"<button type='submit' class='secondary'>{lang.t('inbox.send_refusal')}</button></form>"
    )
