"""The demo's fictional people and what the agencies know about them. Deterministic.

Every PINFL is well formed (``schemas.identifiers.validate_pinfl``); none belongs to anyone.

=====================  ==============  ===========================  ==============================
person                 PINFL           residence registry           cadastre (current rights)
=====================  ==============  ===========================  ==============================
Karimov Aziz           31505862740013  permanent, Tashkent          apartment 1/2
Yusupova Dilnoza       42203902740025  permanent, Tashkent          the same apartment 1/2
Toshmatov Jasur        50711013060037  temporary, Samarkand         land 1/3
Rahimova Malika        43009757300041  permanent, Fergana           none (sold her flat in 2021)
Aliyev Bobur           32902687140052  unknown (404)                house 1/1 and land 1/1
(nobody)               33112999990068  unknown (404)                none
=====================  ==============  ===========================  ==============================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from schemas import (
    Address,
    BirthCertificate,
    Child,
    OwnedProperty,
    Parent,
    PropertyOwnership,
    ResidenceRegistration,
)

__all__ = [
    "ARCHIVE_BIRTHS",
    "AZIZ",
    "BIRTHS",
    "BOBUR",
    "DILNOZA",
    "JASUR",
    "MALIKA",
    "NOT_IN_RESIDENCE_REGISTRY",
    "NO_PROPERTY",
    "PEOPLE",
    "UNKNOWN_PINFL",
    "Birth",
    "BirthParent",
    "Holding",
    "Person",
    "Residence",
    "archival_birth",
    "birth",
    "birth_certificate",
    "expected_birth_certificate",
    "expected_property",
    "expected_residence",
    "person",
]

PropertyKind = Literal["apartment", "house", "land", "non-residential"]


@dataclass(frozen=True)
class Residence:
    region: str
    district: str
    street: str
    house: str
    apartment: str | None
    kind: Literal["permanent", "temporary"]
    registered_on: dt.date
    valid_until: dt.date | None = None


@dataclass(frozen=True)
class Holding:
    """A right of a person in a real-estate object; ``ended_on`` set means no longer current."""

    cadastral_number: str
    kind: PropertyKind
    address: str
    area_m2: Decimal
    share: tuple[int, int]
    registered_on: dt.date
    ended_on: dt.date | None = None


@dataclass(frozen=True)
class Person:
    pinfl: str
    surname: str
    given_name: str
    patronymic: str
    residence: Residence | None
    holdings: tuple[Holding, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.surname} {self.given_name} {self.patronymic}"

    @property
    def properties(self) -> tuple[Holding, ...]:
        """The current holdings (rights not ended), in the order the cadastre lists them."""
        current = [h for h in self.holdings if h.ended_on is None]
        return tuple(sorted(current, key=lambda h: (h.registered_on, h.cadastral_number)))


_TASHKENT_FLAT = Holding(  # owned by the married couple, half each
    "10:01:05:02:01:0045", "apartment",
    "Toshkent shahri, Yunusobod tumani, Amir Temur ko'chasi, 108-uy, 45-xonadon",
    Decimal("74.50"), (1, 2), dt.date(2015, 3, 12),
)
_TASHKENT = Residence("Toshkent shahri", "Yunusobod tumani", "Amir Temur ko'chasi", "108", "45",
                      "permanent", dt.date(2015, 4, 2))

AZIZ = Person("31505862740013", "Karimov", "Aziz", "Rustamovich", _TASHKENT, (_TASHKENT_FLAT,))
DILNOZA = Person("42203902740025", "Yusupova", "Dilnoza", "Akmalovna", _TASHKENT, (_TASHKENT_FLAT,))
JASUR = Person(
    "50711013060037", "Toshmatov", "Jasur", "Bahodir o'g'li",
    Residence("Samarqand viloyati", "Samarqand shahri", "Universitet xiyoboni", "15", "312",
              "temporary", dt.date(2023, 9, 1), dt.date(2027, 6, 30)),
    (Holding("14:02:11:03:07:0310", "land",
             "Samarqand viloyati, Urgut tumani, Qoratepa MFY, 7-uchastka",
             Decimal("1200.00"), (1, 3), dt.date(2022, 1, 20)),),
)
MALIKA = Person(
    "43009757300041", "Rahimova", "Malika", "Shavkatovna",
    Residence("Farg'ona viloyati", "Farg'ona shahri", "Al-Farg'oniy ko'chasi", "21", None,
              "permanent", dt.date(1998, 10, 5)),
    (Holding("15:01:02:04:03:0021", "apartment",
             "Farg'ona viloyati, Farg'ona shahri, Mustaqillik ko'chasi, 4-uy, 17-xonadon",
             Decimal("52.30"), (1, 1), dt.date(2004, 6, 15), ended_on=dt.date(2021, 8, 9)),),
)
BOBUR = Person(
    "32902687140052", "Aliyev", "Bobur", "Olimovich", None,
    (Holding("12:05:03:01:02:0118", "house",
             "Namangan viloyati, Chust tumani, Bog'ishamol MFY, Navoiy ko'chasi, 18-uy",
             Decimal("143.80"), (1, 1), dt.date(2009, 11, 3)),
     Holding("12:05:03:01:02:0119", "land",
             "Namangan viloyati, Chust tumani, Bog'ishamol MFY, Navoiy ko'chasi, 18-uy",
             Decimal("600.00"), (1, 1), dt.date(2009, 11, 3))),
)

PEOPLE: tuple[Person, ...] = (AZIZ, DILNOZA, JASUR, MALIKA, BOBUR)
NO_PROPERTY = MALIKA.pinfl
NOT_IN_RESIDENCE_REGISTRY = BOBUR.pinfl
UNKNOWN_PINFL = "33112999990068"
"""Well formed, born 31.12.1999, known to no agency."""


def person(pinfl: str) -> Person | None:
    return next((p for p in PEOPLE if p.pinfl == pinfl), None)


def expected_residence(pinfl: str) -> ResidenceRegistration | None:
    """What the bus should answer for the residence service (None: no data)."""
    found = person(pinfl)
    if found is None or found.residence is None:
        return None
    r = found.residence
    return ResidenceRegistration(
        pinfl=pinfl,
        full_name=found.full_name,
        address=Address(region=r.region, district=r.district, street=r.street, house=r.house,
                        apartment=r.apartment),
        kind=r.kind,
        registered_on=r.registered_on,
        valid_until=r.valid_until,
    )


def expected_property(pinfl: str) -> PropertyOwnership:
    """What the bus should answer for the property service (current rights only)."""
    found = person(pinfl)
    return PropertyOwnership(
        pinfl=pinfl,
        properties=[
            OwnedProperty(cadastral_number=h.cadastral_number, kind=h.kind, address=h.address,
                          area_m2=h.area_m2, share=f"{h.share[0]}/{h.share[1]}",
                          registered_on=h.registered_on)
            for h in (found.properties if found else ())
        ],
    )


# ---------------------------------------------------------------------------------------------
# The civil registry's births (the SOAP agency ``demo.civil_registry``)
#
# =================  ==============  ============  =================================  =========
# child              PINFL           certificate   parents                             office
# =================  ==============  ============  =================================  =========
# Karimov Aziz       31505862740013  II-TN 0174581 both named, no PINFL (born 1986)   Yunusobod
# Karimova Madina    61203186540019  I-TN 0451207  Aziz (father), Dilnoza (mother)    Yunusobod
# Karimov Samandar   52509216540027  I-TN 0912233  Aziz (father), Dilnoza (mother)    Yunusobod
# Toshmatova Sevara  60107236540031  I-SM 0030418  Jasur (father) only                Samarqand
# Karimova Laylo     61810266540045  I-TN 1187302  Aziz (father), Dilnoza (mother)    Yunusobod
# =================  ==============  ============  =================================  =========


@dataclass(frozen=True)
class BirthParent:
    role: Literal["mother", "father"]
    full_name: str
    pinfl: str | None


@dataclass(frozen=True)
class Birth:
    """A birth registered by a civil registry office (FHDYO), with its certificate."""

    series: str
    number: str
    pinfl: str
    surname: str
    given_name: str
    patronymic: str
    born_on: dt.date
    sex: Literal["male", "female"]
    place_of_birth: str
    parents: tuple[BirthParent, ...]
    registered_on: dt.date
    office: str

    @property
    def certificate(self) -> str:
        return f"{self.series} {self.number}"


_YUNUSOBOD_FHDYO = "Toshkent shahri Yunusobod tumani FHDYO bo'limi"
_KARIMOVS = (
    BirthParent("father", AZIZ.full_name, AZIZ.pinfl),
    BirthParent("mother", DILNOZA.full_name, DILNOZA.pinfl),
)
BIRTHS: tuple[Birth, ...] = (
    Birth("II-TN", "0174581", AZIZ.pinfl, "Karimov", "Aziz", "Rustamovich",
          dt.date(1986, 5, 15), "male", "Toshkent shahri",
          (BirthParent("father", "Karimov Rustam Aliyevich", None),
           BirthParent("mother", "Karimova Nodira Salimovna", None)),
          dt.date(1986, 5, 27), _YUNUSOBOD_FHDYO),
    Birth("I-TN", "0451207", "61203186540019", "Karimova", "Madina", "Azizovna",
          dt.date(2018, 3, 12), "female", "Toshkent shahri", _KARIMOVS,
          dt.date(2018, 3, 20), _YUNUSOBOD_FHDYO),
    Birth("I-TN", "0912233", "52509216540027", "Karimov", "Samandar", "Azizovich",
          dt.date(2021, 9, 25), "male", "Toshkent shahri", _KARIMOVS,
          dt.date(2021, 10, 4), _YUNUSOBOD_FHDYO),
    Birth("I-SM", "0030418", "60107236540031", "Toshmatova", "Sevara", "Jasurovna",
          dt.date(2023, 7, 1), "female", "Samarqand shahri",
          (BirthParent("father", JASUR.full_name, JASUR.pinfl),),
          dt.date(2023, 7, 12), "Samarqand shahri FHDYO bo'limi"),
    Birth("I-TN", "1187302", "61810266540045", "Karimova", "Laylo", "Azizovna",
          dt.date(2026, 10, 18), "female", "Toshkent shahri", _KARIMOVS,
          dt.date(2026, 10, 27), _YUNUSOBOD_FHDYO),
)
"""Births the civil registry holds; nobody else in ``PEOPLE`` has a certificate there."""

ARCHIVE_BIRTHS: tuple[Birth, ...] = (
    Birth("III-TN", "0038215", DILNOZA.pinfl, "Yusupova", "Dilnoza", "Akmalovna",
          dt.date(1990, 3, 22), "female", "Toshkent shahri",
          (BirthParent("father", "Yusupov Akmal Karimovich", None),
           BirthParent("mother", "Yusupova Gulnora Rashidovna", None)),
          dt.date(1990, 4, 2), "Toshkent shahri Mirobod tumani FHDYO bo'limi"),
)
"""Births on paper only, in the state archive's books (before the registry was digitised)."""


def birth(pinfl: str) -> Birth | None:
    return next((b for b in BIRTHS if b.pinfl == pinfl), None)


def expected_birth_certificate(pinfl: str) -> BirthCertificate | None:
    """What the bus should answer for the birth-certificate service (None: no data)."""
    found = birth(pinfl)
    return None if found is None else birth_certificate(found)


def archival_birth(pinfl: str) -> Birth | None:
    """What an archivist finds in the books about ``pinfl`` (None: nothing)."""
    return next((b for b in ARCHIVE_BIRTHS if b.pinfl == pinfl), None)


def birth_certificate(found: Birth) -> BirthCertificate:
    return BirthCertificate(
        number=found.certificate,
        child=Child(
            pinfl=found.pinfl,
            full_name=f"{found.surname} {found.given_name} {found.patronymic}",
            born_on=found.born_on,
            sex=found.sex,
            place_of_birth=found.place_of_birth,
        ),
        parents=[Parent(role=p.role, full_name=p.full_name, pinfl=p.pinfl) for p in found.parents],
        registered_on=found.registered_on,
        registry_office=found.office,
    )
