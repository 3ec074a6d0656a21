"""Shared schemas: the pydantic models every party of the bus agrees on.

This package imports nothing else of the project. Agencies' native formats are translated to
and from these models by adapters; the bus validates every request against them before it
leaves the client's node.
"""

from schemas.base import SharedRequest, SharedResponse, export_json_schemas
from schemas.civil import BirthCertificate, BirthCertificateRequest, Child, Parent
from schemas.identifiers import PINFL, STIR, mask_identifier
from schemas.property import OwnedProperty, PropertyOwnership, PropertyOwnershipRequest
from schemas.residence import Address, ResidenceRegistration, ResidenceRegistrationRequest

__all__ = [
    "PINFL",
    "STIR",
    "Address",
    "BirthCertificate",
    "BirthCertificateRequest",
    "Child",
    "OwnedProperty",
    "Parent",
    "PropertyOwnership",
    "PropertyOwnershipRequest",
    "ResidenceRegistration",
    "ResidenceRegistrationRequest",
    "SharedRequest",
    "SharedResponse",
    "export_json_schemas",
    "mask_identifier",
]
