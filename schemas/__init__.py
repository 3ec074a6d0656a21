"""Shared schemas: the pydantic models every party of the bus agrees on.

This package imports nothing else of the project. Agencies' native formats are translated to
and from these models by adapters; the bus validates every request against them before it
leaves the client's node.
"""

from schemas.base import SharedRequest, SharedResponse, export_json_schemas
from schemas.civil import BirthCertificate, BirthCertificateRequest, Child, Parent
from schemas.education import Study, StudyCertificate, StudyCertificateRequest
from schemas.employment import (
    EmploymentPeriod,
    MonthlySalary,
    SalaryCertificate,
    SalaryCertificateRequest,
    ServiceLength,
)
from schemas.enforcement import Creditor, DebtCheck, DebtCheckRequest, EnforcementCase
from schemas.identifiers import PINFL, STIR, mask_identifier
from schemas.property import OwnedProperty, PropertyOwnership, PropertyOwnershipRequest
from schemas.residence import (
    Address,
    PermanentRegistrationApplication,
    PermanentRegistrationDecision,
    ResidenceDuration,
    ResidenceDurationRequest,
    ResidenceRegistration,
    ResidenceRegistrationRequest,
)
from schemas.social import (
    BenefitEligibility,
    BenefitEligibilityRequest,
    ChildBirthBenefitApplication,
    ChildBirthBenefitReceipt,
)

__all__ = [
    "PINFL",
    "STIR",
    "Address",
    "BenefitEligibility",
    "BenefitEligibilityRequest",
    "BirthCertificate",
    "BirthCertificateRequest",
    "Child",
    "ChildBirthBenefitApplication",
    "ChildBirthBenefitReceipt",
    "Creditor",
    "DebtCheck",
    "DebtCheckRequest",
    "EmploymentPeriod",
    "EnforcementCase",
    "MonthlySalary",
    "OwnedProperty",
    "Parent",
    "PermanentRegistrationApplication",
    "PermanentRegistrationDecision",
    "PropertyOwnership",
    "PropertyOwnershipRequest",
    "ResidenceDuration",
    "ResidenceDurationRequest",
    "ResidenceRegistration",
    "ResidenceRegistrationRequest",
    "SalaryCertificate",
    "SalaryCertificateRequest",
    "ServiceLength",
    "SharedRequest",
    "SharedResponse",
    "Study",
    "StudyCertificate",
    "StudyCertificateRequest",
    "export_json_schemas",
    "mask_identifier",
]
