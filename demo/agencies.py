"""The demo's agencies of the services citizens ask for most, started beside the first four.

``start_agencies(state)`` seeds each agency's own database in ``state`` and starts the servers:
the pension fund (SOAP), the enforcement bureau and the social-protection agency (REST/JSON),
and makes the education register's bare database (read by the ``sql`` adapter). The residence
registry's address certificate and the application for permanent registration belong to the
residence registry (``demo.residence_registry``, and its operators' inbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demo import education_register, enforcement_bureau, pension_fund, social_protection
from demo.node_config import AgencyUrls
from demo.servers import RunningServer, serve_in_thread

__all__ = ["Agencies", "start_agencies"]


@dataclass
class Agencies:
    """The running agencies; ``stop`` stops them."""

    pension: RunningServer
    enforcement: RunningServer
    social: RunningServer
    education_db: Path
    social_db: Path  # the social-protection agency's database (its applications)

    def urls(self) -> AgencyUrls:
        return AgencyUrls(
            pension_wsdl=f"{self.pension.url}{pension_fund.WSDL_PATH}?wsdl",
            education_db=self.education_db,
            enforcement_url=self.enforcement.url,
            social_url=self.social.url,
        )

    def stop(self) -> None:
        for server in (self.pension, self.enforcement, self.social):
            server.stop()


def start_agencies(state: Path) -> Agencies:
    """Seed the agencies' databases in ``state`` (kept across runs) and start their servers."""
    education_db = education_register.create_database(state / "education.db")
    social_db = state / "social.db"
    started: list[RunningServer] = []
    try:
        for app in (pension_fund.create_app(state / "pension.db"),
                    enforcement_bureau.create_app(state / "enforcement.db"),
                    social_protection.create_app(social_db)):
            started.append(serve_in_thread(app))
    except BaseException:
        for server in started:
            server.stop()
        raise
    pension, enforcement, social = started
    return Agencies(pension, enforcement, social, education_db, social_db)
