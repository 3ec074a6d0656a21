"""Demo agency "cadastre": a bare database of real-estate rights, read by the ``sql`` adapter.

Schema (portable: the same statements load into SQLite and PostgreSQL)::

    owners   (id, pinfl, full_name)
    objects  (id, cadastral_no, kind_code, address, area)
    rights   (id, owner_id, object_id, share_num, share_den, registered, ended)

``kind_code``: 1 kvartira (apartment), 2 turar uy (house), 3 yer uchastkasi (land), 4 noturar
bino (non-residential). ``ended IS NULL``: the right is current; ended rights stay as history.

``QUERY`` is the statement the demo config gives the adapter (one :pinfl parameter); its rows go
to ``demo.cadastre_mapping.to_response``. ``create_database(path)`` makes the SQLite file,
``create_database_postgres(url)`` loads the same tables and rows into an existing PostgreSQL
database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text

from demo.agency_kit import seed_sqlalchemy
from demo.data import PEOPLE

__all__ = ["KIND_CODES", "QUERY", "SCHEMA", "create_database", "create_database_postgres", "load"]

KIND_CODES = {"apartment": 1, "house": 2, "land": 3, "non-residential": 4}

SCHEMA = (
    """CREATE TABLE owners (
        id INTEGER PRIMARY KEY,
        pinfl CHAR(14) NOT NULL UNIQUE,
        full_name VARCHAR(200) NOT NULL
    )""",
    """CREATE TABLE objects (
        id INTEGER PRIMARY KEY,
        cadastral_no VARCHAR(19) NOT NULL UNIQUE,
        kind_code INTEGER NOT NULL,
        address VARCHAR(300) NOT NULL,
        area NUMERIC(10, 2) NOT NULL
    )""",
    """CREATE TABLE rights (
        id INTEGER PRIMARY KEY,
        owner_id INTEGER NOT NULL REFERENCES owners (id),
        object_id INTEGER NOT NULL REFERENCES objects (id),
        share_num INTEGER NOT NULL,
        share_den INTEGER NOT NULL,
        registered DATE NOT NULL,
        ended DATE
    )""",
)

QUERY = """\
SELECT o.cadastral_no, o.kind_code, o.address, o.area,
       r.share_num, r.share_den, r.registered
FROM owners w
JOIN rights r ON r.owner_id = w.id
JOIN objects o ON o.id = r.object_id
WHERE w.pinfl = :pinfl AND r.ended IS NULL
ORDER BY r.registered, o.cadastral_no"""


def _rows() -> dict[str, list[dict[str, Any]]]:
    owners: list[dict[str, Any]] = []
    objects: dict[str, dict[str, Any]] = {}
    rights: list[dict[str, Any]] = []
    for person in PEOPLE:
        if not person.holdings:
            continue
        owner_id = len(owners) + 1
        owners.append({"id": owner_id, "pinfl": person.pinfl, "full_name": person.full_name})
        for h in person.holdings:
            obj = objects.setdefault(h.cadastral_number, {
                "id": len(objects) + 1, "cadastral_no": h.cadastral_number,
                "kind_code": KIND_CODES[h.kind], "address": h.address, "area": h.area_m2,
            })
            rights.append({
                "id": len(rights) + 1, "owner_id": owner_id, "object_id": obj["id"],
                "share_num": h.share[0], "share_den": h.share[1],
                "registered": h.registered_on, "ended": h.ended_on,
            })
    return {"owners": owners, "objects": list(objects.values()), "rights": rights}


def load(conn: Connection) -> None:
    """Create the cadastre's tables and rows through ``conn`` (SQLite or PostgreSQL)."""
    sqlite = conn.dialect.name == "sqlite"
    for statement in SCHEMA:
        conn.execute(text(statement))
    for table, rows in _rows().items():
        if sqlite:  # SQLite has no DATE or DECIMAL: ISO text and REAL, as a real one would hold
            rows = [
                {k: v.isoformat() if hasattr(v, "isoformat") else
                 float(v) if k == "area" else v for k, v in row.items()}
                for row in rows
            ]
        columns = list(rows[0])
        conn.execute(
            text(f"INSERT INTO {table} ({', '.join(columns)}) "
                 f"VALUES ({', '.join(':' + c for c in columns)})"),
            rows,
        )


def create_database(path: Path) -> Path:
    """Create the cadastre's SQLite database at ``path`` unless the file exists."""
    return seed_sqlalchemy(path, load)


def create_database_postgres(url: str) -> None:
    """Load the cadastre's tables and rows into the (empty) PostgreSQL database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            load(conn)
    finally:
        engine.dispose()
