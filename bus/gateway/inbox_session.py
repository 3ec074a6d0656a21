"""Officials signed in at ``/inbox``: the sign-in form, and a session per sign-in.

An official signs in with the name and password of ``inbox.operators`` on the page's form
(``POST /inbox/sign-in``); the node keeps a session for ``LIFETIME_S`` and gives the browser
its random id in a cookie (``COOKIE``: ``HttpOnly``, ``SameSite=Strict``, ``Path=/inbox``,
``Secure`` over https). Signing out (``POST /inbox/sign-out``) ends the session on the node,
not only in the browser. Sessions live in the node's memory: a node restarted, or another node
behind the same address, asks the official to sign in again. Scripts may still send HTTP Basic
credentials with each request instead; no page asks the browser for them.

Only the SHA-256 of a session id is kept, so the node's memory holds nothing that could be
replayed as a cookie. Guessing is slowed: after ``MAX_FAILURES`` wrong passwords for one name
from one address within ``FAILURE_WINDOW_S``, that name is refused from that address until the
window has passed (``Sessions.refused``), even with the right password; each lockout is
audited (service ``bus/operator-sign-in/v1``, outcome ``sign-in-locked``) and counted in
``bus_sign_in_lockouts_total``.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bus.gateway.i18n import Lang

__all__ = [
    "COOKIE",
    "FAILURE_WINDOW_S",
    "INBOX_SIGN_IN",
    "LIFETIME_S",
    "MAX_FAILURES",
    "Sessions",
    "safe_next",
    "sign_in_form",
]

COOKIE = "bus_inbox"
INBOX_SIGN_IN = "bus/operator-sign-in/v1"  # the audit's service of a sign-in lockout
LIFETIME_S = 8 * 3600  # a working day; then the official signs in again
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class _Session:
    operator: str
    expires: float


class Sessions:
    """Signed-in officials by session id (its hash), each until it expires or signs out."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 lifetime_s: float = LIFETIME_S) -> None:
        self._clock, self._lifetime = clock, lifetime_s
        self._sessions: dict[str, _Session] = {}
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def open(self, operator: str) -> str:
        """A new session of ``operator``; its id, for the cookie."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[self._key(session_id)] = _Session(operator, now + self._lifetime)
        return session_id

    def operator(self, session_id: str) -> str | None:
        """Whose session ``session_id`` is, while it lasts."""
        with self._lock:
            found = self._sessions.get(self._key(session_id))
        return found.operator if found is not None and found.expires > self._clock() else None

    def refused(self, name: str, address: str) -> float:
        """Seconds until ``name`` may try again from ``address`` (0: now)."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get((name, address), [])
                      if t > now - FAILURE_WINDOW_S]
        return recent[0] + FAILURE_WINDOW_S - now if len(recent) >= MAX_FAILURES else 0.0

    def failed(self, name: str, address: str) -> bool:
        """A wrong password for ``name`` from ``address``; True when this one locks them out
        (the caller audits the lockout)."""
        now = self._clock()
        with self._lock:
            self._failures = {k: kept for k, times in self._failures.items()
                              if (kept := [t for t in times if t > now - FAILURE_WINDOW_S])}
            recent = self._failures.setdefault((name, address), [])
            recent.append(now)
            return len(recent) == MAX_FAILURES

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(self._key(session_id), None)


def safe_next(target: str) -> str:
    """Where to go after signing in: a page of the inbox, never another site."""
    if target.startswith("/inbox") and "//" not in target and "\\" not in target:
        return target
    return "/inbox"


def sign_in_form(next_page: str, *, error: str = "", note: str = "", name: str = "",
                 lang: Lang | None = None) -> str:
    """The sign-in page's body, in ``lang`` (English when None); ``error`` and ``note`` are
    texts already in it."""
    lang = lang or Lang("en")
    parts = [f"<h1>{lang.t('inbox.sign_in_heading')}</h1>",
             f"<p>{lang.t('inbox.sign_in_intro')}</p>"]
    if note:
        parts.append(f"<p class='note ok' role='status'>{html.escape(note)}</p>")
    if error:
        parts.append(f"<div class='summary' role='alert' id='errors'><p class='error'>"
                     f"{html.escape(error)}</p></div>")
    parts.append(
        f"<form method='post' action='/inbox/sign-in{lang.query}'>"
        f"<input type='hidden' name='next' value='{html.escape(safe_next(next_page))}'>"
        f"<label for='name'>{lang.t('inbox.name')}</label>"
        f"<input id='name' name='name' autocomplete='username' value='{html.escape(name)}'"
        f"{' aria-invalid=true' if error else ''} autofocus>"
        f"<label for='password'>{lang.t('inbox.password')}</label>"
        "<input id='password' name='password' type='password' autocomplete='current-password'"
        f"{' aria-invalid=true' if error else ''}>"
        f"<button type='submit'>{lang.t('inbox.sign_in')}</button></form>"
    )
    return "".join(parts)
