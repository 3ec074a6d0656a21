"""Request numbers (Luhn check digit), the document store, and re-verifying a stored answer."""

from __future__ import annotations

import datetime as dt
import itertools
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from bus.core.envelope import Envelope, Kind, new_id
from bus.core.errors import BusUnavailable, UnknownDocument
from bus.core.seal import Seal
from bus.records.documents import (
    DocumentStore,
    check_digit,
    format_number,
    parse_number,
    public_view,
    status,
)
from signing import JwsSigner, load_signing_key
from tests.signing.pki import KEY_PASSPHRASE, T0, Pki, make_pki

PINFL = "31505861234567"


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def answer(**kw: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": new_id(), "correlation": new_id(), "client": "portal",
        "service": "civil-registry/residence/v1", "user": "officer-17",
        "purpose": "child-benefit", "subject": PINFL, "issued_at": T0,
        "expires_at": T0 + dt.timedelta(seconds=5), "kind": Kind.response,
        "payload": {"pinfl": PINFL, "name": "Aziz Karimov"},
    }
    fields.update(kw)
    return Envelope(**fields)


# --- numbers ----------------------------------------------------------------------------------


def test_luhn_check_digit() -> None:
    assert check_digit("7992739871") == "3"  # the textbook example
    assert check_digit("") == "0"
    assert format_number("BUS", 2026, 123) == f"BUS-2026-000123-{check_digit('2026000123')}"
    assert format_number("BUS", 2026, 1234567) == f"BUS-2026-1234567-{check_digit('20261234567')}"


def test_every_single_digit_error_is_caught() -> None:
    number = format_number("BUS", 2026, 123)
    body = "2026000123"
    for i, wrong in itertools.product(range(len(body)), "0123456789"):
        if body[i] == wrong:
            continue
        typo = body[:i] + wrong + body[i + 1 :]
        mistyped = f"BUS-{typo[:4]}-{typo[4:]}-{number[-1]}"
        with pytest.raises(UnknownDocument, match="check digit"):
            parse_number(mistyped)


def test_adjacent_swaps_are_caught_but_09_and_90() -> None:
    caught = missed = 0
    for seq in range(0, 100_000, 7):
        body = f"2026{seq:06d}"
        digit = check_digit(body)
        for i in range(len(body) - 1):
            a, b = body[i], body[i + 1]
            if a == b:
                continue
            swapped = body[:i] + b + a + body[i + 2 :]
            if check_digit(swapped) == digit:
                assert {a, b} == {"0", "9"}
                missed += 1
            else:
                caught += 1
    assert missed > 0 and caught > 10 * missed  # the known Luhn blind spot, and only it


@pytest.mark.parametrize(
    "text", ["", "BUS-2026-123-4", "bus-2026-000123-x", "BUS2026000123", "BUS-26-000123-4",
             "B-2026-000123-4", "BUS-2026-000123-4-5", "BUS-2026-" + "1" * 40 + "-1",
             "<script>", "../../etc/passwd"],
)
def test_malformed_numbers(text: str) -> None:
    with pytest.raises(UnknownDocument):
        parse_number(text)


def test_parse_is_lenient_on_case_and_spaces() -> None:
    number = format_number("BUS", 2026, 42)
    assert parse_number(f"  {number.lower()} ") == ("BUS", 2026, 42)


# --- the store --------------------------------------------------------------------------------


def test_numbers_are_unique_across_restarts_and_count_per_year(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "documents.db"
    store = DocumentStore(path, clock=clock)
    first = store.issue(answer(), message_id=new_id())
    assert first.number == format_number("BUS", 2026, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds personal data
    store.close()
    again = DocumentStore(path, clock=clock)  # the node restarted
    assert again.issue(answer(), message_id=new_id()).number == format_number("BUS", 2026, 2)
    clock.now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert again.issue(answer(), message_id=new_id()).number == format_number("BUS", 2027, 1)
    assert again.get(first.number) == first


def test_concurrent_issues_never_share_a_number(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "d.db", prefix="GOV", clock=Clock())
    numbers: list[str] = []
    lock = threading.Lock()

    def issue() -> None:
        for _ in range(20):
            record = store.issue(answer(), message_id=new_id())
            with lock:
                numbers.append(record.number)

    threads = [threading.Thread(target=issue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(numbers) == len(set(numbers)) == 160
    assert all(n.startswith("GOV-2026-") for n in numbers)


def test_record_keeps_the_signed_answer_byte_for_byte(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "d.db", clock=Clock())
    envelope = answer()
    record = store.issue(envelope, message_id="m-1")
    got = store.get(record.number)
    assert got.envelope == envelope.to_json()
    assert (got.service, got.provider, got.client, got.message_id, got.response_id) == (
        "civil-registry/residence/v1", "civil-registry", "portal", "m-1", envelope.id
    )
    assert len(got.fingerprint) == 64


def test_unknown_and_mistyped_numbers(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "d.db", clock=Clock())
    record = store.issue(answer(), message_id=new_id())
    with pytest.raises(UnknownDocument, match="no document"):
        store.get(format_number("BUS", 2026, 2))
    with pytest.raises(UnknownDocument, match="no document"):
        store.get(format_number("XYZ", 2026, 1))  # another node's prefix
    with pytest.raises(UnknownDocument, match="check digit"):
        store.get(record.number[:-1] + str((int(record.number[-1]) + 1) % 10))


def test_a_broken_store_is_our_fault(tmp_path: Path) -> None:
    (tmp_path / "d.db").write_bytes(b"not a database at all" * 100)
    store = DocumentStore(tmp_path / "d.db", clock=Clock())
    with pytest.raises(BusUnavailable):
        store.issue(answer(), message_id=new_id())


# --- status -----------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    pki = make_pki(tmp_path)
    pki.issue("portal", "civil-registry")
    return pki


def test_status_and_the_public_view(pki: Pki, tmp_path: Path) -> None:
    key = load_signing_key(pki.keys / "civil-registry.key", KEY_PASSPHRASE)
    provider = Seal({"civil-registry": JwsSigner("civil-registry", key)},
                    pki.store("portal", "civil-registry"), clock=pki.clock)
    reader = Seal({}, pki.store("portal", "civil-registry"), clock=pki.clock)
    store = DocumentStore(tmp_path / "d.db", clock=pki.clock)
    record = store.issue(provider.sign(answer()), message_id=new_id())

    st = status(reader, record)
    assert st.valid and st.signer == "civil-registry"
    assert st.serial == pki.ca.find("civil-registry")[0].serial
    view = public_view(record, st)
    text = repr(view)
    assert PINFL not in text and "Aziz" not in text and "officer-17" not in text
    assert view["fingerprint"] == record.fingerprint and view["signature"]["valid"] is True

    pki.clock.advance(days=400)  # the certificate expired since: the document still stands
    st = status(reader, record)
    assert st.valid and "expired since" in st.detail

    pki.ca.revoke(pki.ca.find("civil-registry")[0].serial_number)
    pki.ticker.t += 10
    assert status(reader, record).state == "revoked"

    forged = store.issue(answer(signature="eyJhbGciOiJFUzI1NiJ9..AAAA"), message_id=new_id())
    assert status(reader, forged).state == "invalid"
