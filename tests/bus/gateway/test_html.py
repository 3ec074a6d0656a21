"""What every page shares: times in the node's time zone, field names as people read them."""

from __future__ import annotations

import datetime as dt

from bus.gateway.html import label_of, page, when


def test_a_moment_is_shown_in_the_nodes_time_zone() -> None:
    moment = dt.datetime(2026, 12, 31, 21, 30, tzinfo=dt.UTC)
    shown = '<time datetime="2026-12-31T21:30:00+00:00">2027-01-01 02:30 (UTC+05:00)</time>'
    assert when(moment, "Asia/Tashkent") == shown
    assert when(moment.timestamp(), "Asia/Tashkent") == shown  # Unix time
    assert when("2026-12-31T21:30:00+00:00", "Asia/Tashkent") == shown  # ISO 8601
    assert when(moment, "UTC").endswith(">2026-12-31 21:30 (UTC)</time>")
    assert when(moment, "America/St_Johns").endswith("18:00 (UTC-03:30)</time>")
    assert ">2027-01-01 02:30</time>" in when(moment, "Asia/Tashkent", offset=False)


def test_field_names_as_people_read_them() -> None:
    assert label_of("registered_on") == "Registered on"
    assert label_of("pinfl") == "PINFL" and label_of("area_m2") == "Area m²"
    assert label_of("address.region") == "Address \u203a Region"


def test_every_page_has_the_landmarks_and_fits_a_phone() -> None:
    body = page("T", "<h1>T</h1>", nav="<a href='/inbox'>Inbox</a>").body.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert body.index("<header>") < body.index('<nav aria-label="Page">') < body.index(
        '<main id="main"') and '<a class="skip" href="#main">' in body
    assert "@media (max-width:40em)" in body
