"""Demo agency "education-register": the register of students of higher and secondary special
education institutions, a bare database read by the ``sql`` adapter.

Schema (portable: the same statements load into SQLite and PostgreSQL), in the register's own
vocabulary::

    talabalar    (jshshir, fio)                                       students
    muassasalar  (id, nomi, stir, turi)                               institutions
    tahsil       (id, jshshir, muassasa_id, yonalish_kodi, yonalish_nomi, shakl, kurs,
                  boshlangan, tugash, holat, tolov)                   studies

``turi``: OTM (oliy ta'lim muassasasi, higher) or OMTM (o'rta maxsus, secondary special);
``shakl``: kunduzgi (full-time), sirtqi (part-time), kechki (evening), masofaviy (distance);
``holat``: oqimoqda (studying), akademik (academic leave), bitirgan (graduated),
chetlashtirilgan (expelled); ``tolov``: grant or kontrakt.

``QUERY`` is the statement the demo config gives the adapter (one :pinfl parameter); its rows go
to ``demo.education_mapping.to_response``. ``create_database(path)`` makes the SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, text

from demo.agency_kit import seed_sqlalchemy
from demo.data import PEOPLE
from demo.records import STUDIES

__all__ = ["FORMS", "LEVELS", "QUERY", "SCHEMA", "STATES", "create_database", "load"]

LEVELS = {"higher": "OTM", "secondary-special": "OMTM"}
FORMS = {"full-time": "kunduzgi", "part-time": "sirtqi", "evening": "kechki",
         "distance": "masofaviy"}
STATES = {"studying": "oqimoqda", "academic-leave": "akademik", "graduated": "bitirgan",
          "expelled": "chetlashtirilgan"}
_FUNDING = {"state-grant": "grant", "contract": "kontrakt"}

SCHEMA = (
    """CREATE TABLE talabalar (jshshir CHAR(14) PRIMARY KEY, fio VARCHAR(200) NOT NULL)""",
    """CREATE TABLE muassasalar (
        id INTEGER PRIMARY KEY, nomi VARCHAR(300) NOT NULL, stir CHAR(9) NOT NULL UNIQUE,
        turi VARCHAR(4) NOT NULL
    )""",
    """CREATE TABLE tahsil (
        id INTEGER PRIMARY KEY,
        jshshir CHAR(14) NOT NULL REFERENCES talabalar (jshshir),
        muassasa_id INTEGER NOT NULL REFERENCES muassasalar (id),
        yonalish_kodi VARCHAR(8) NOT NULL, yonalish_nomi VARCHAR(300) NOT NULL,
        shakl VARCHAR(12) NOT NULL, kurs INTEGER, boshlangan DATE NOT NULL,
        tugash DATE NOT NULL, holat VARCHAR(20) NOT NULL, tolov VARCHAR(10) NOT NULL
    )""",
)

QUERY = """\
SELECT t.fio, m.nomi, m.stir, m.turi, h.yonalish_kodi, h.yonalish_nomi, h.shakl, h.kurs,
       h.boshlangan, h.tugash, h.holat, h.tolov
FROM talabalar t
JOIN tahsil h ON h.jshshir = t.jshshir
JOIN muassasalar m ON m.id = h.muassasa_id
WHERE t.jshshir = :pinfl
ORDER BY h.boshlangan DESC"""


def load(conn: Connection) -> None:
    """Create the register's tables and rows through ``conn`` (SQLite or PostgreSQL)."""
    for statement in SCHEMA:
        conn.execute(text(statement))
    names = {p.pinfl: p.full_name for p in PEOPLE}
    institutions: dict[str, int] = {}
    for pinfl in sorted({s.pinfl for s in STUDIES}):
        conn.execute(text("INSERT INTO talabalar VALUES (:j, :f)"), {"j": pinfl, "f": names[pinfl]})
    for i, study in enumerate(STUDIES, 1):
        if study.institution_stir not in institutions:
            institutions[study.institution_stir] = len(institutions) + 1
            conn.execute(
                text("INSERT INTO muassasalar VALUES (:id, :nomi, :stir, :turi)"),
                {"id": institutions[study.institution_stir], "nomi": study.institution,
                 "stir": study.institution_stir, "turi": LEVELS[study.level]},
            )
        conn.execute(
            text("INSERT INTO tahsil VALUES (:id, :j, :m, :kod, :nomi, :shakl, :kurs, :b, :t, "
                 ":holat, :tolov)"),
            {"id": i, "j": study.pinfl, "m": institutions[study.institution_stir],
             "kod": study.programme_code, "nomi": study.programme, "shakl": FORMS[study.form],
             "kurs": study.course, "b": study.started_on.isoformat(),
             "t": study.ends_on.isoformat(), "holat": STATES[study.status],
             "tolov": _FUNDING[study.funding]},
        )


def create_database(path: Path) -> Path:
    """Create the register's SQLite database at ``path`` unless the file exists."""
    return seed_sqlalchemy(path, load)
