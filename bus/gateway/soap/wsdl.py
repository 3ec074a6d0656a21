"""A service's WSDL, generated from its shared schema, and its messages' XML along that schema.

``service_wsdl`` turns the request and response models' JSON Schema into XSD (string, date,
dateTime, integer, decimal, boolean, enumerations, nested types, lists as repeated elements,
optional fields as ``minOccurs="0"``) inside a SOAP 1.1 document/literal wrapped WSDL;
``xml_to_data`` and ``data_to_xml`` read a request element into data for the model and write an
answer along the same schema. The SOAP gateway (``bus.gateway.soap.endpoint``) serves both.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from bus.config.routes import Route
from bus.core.errors import SchemaInvalid

__all__ = ["BUS_NS", "data_to_xml", "model_schema", "operation_name", "service_namespace",
           "service_wsdl", "xml_to_data"]

BUS_NS = "urn:bus:soap:v1"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
_SCALARS = {"integer": "xsd:integer", "number": "xsd:decimal", "boolean": "xsd:boolean"}
_FORMATS = {"date": "xsd:date", "date-time": "xsd:dateTime"}


def service_namespace(service: str) -> str:
    return "urn:bus:service:" + service.replace("/", ":")


def operation_name(route: Route) -> str:
    return "Get" + route.response_model.__name__


# ---------------------------------------------------------------------------------------------
# JSON Schema -> XSD, and data <-> XML along the same schema


def _ref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def _field(schema: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """(the type's schema, optional, repeated) of a property's schema."""
    optional = False
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        optional = len(kinds) < len(schema["anyOf"])
        if len(kinds) == 1:
            schema = kinds[0]
        elif any(s.get("type") == "number" for s in kinds):
            schema = {"type": "number"}  # Decimal: number or numeric string
        else:
            schema = {"type": "string"}
    if schema.get("type") == "array":
        return schema.get("items", {}), True, True
    return schema, optional, False


def _xsd_type(schema: dict[str, Any], element: etree._Element) -> None:
    """Give ``element`` (an xsd:element) the type of ``schema``: a name or an inline type."""
    name = _ref(schema)
    if name is not None:
        element.set("type", f"t:{name}")
        return
    if "enum" in schema:
        simple = etree.SubElement(element, f"{{{XSD}}}simpleType")
        restriction = etree.SubElement(simple, f"{{{XSD}}}restriction", base="xsd:string")
        for value in schema["enum"]:
            etree.SubElement(restriction, f"{{{XSD}}}enumeration", value=str(value))
        return
    if schema.get("type") == "string":
        element.set("type", _FORMATS.get(str(schema.get("format")), "xsd:string"))
        return
    element.set("type", _SCALARS.get(str(schema.get("type")), "xsd:string"))


def _complex(
    parent: etree._Element, schema: dict[str, Any], name: str | None, *, optional: bool = False
) -> None:
    """A complexType of ``schema``'s properties; ``optional``: every element may be absent (an
    answer minimised to the fields of the client's access right)."""
    complex_type = etree.SubElement(parent, f"{{{XSD}}}complexType")
    if name is not None:
        complex_type.set("name", name)
    sequence = etree.SubElement(complex_type, f"{{{XSD}}}sequence")
    required = set(schema.get("required", []))
    for prop, prop_schema in schema.get("properties", {}).items():
        inner, absent, repeated = _field(prop_schema)
        element = etree.SubElement(sequence, f"{{{XSD}}}element", name=prop)
        if repeated:
            element.set("minOccurs", "0")
            element.set("maxOccurs", "unbounded")
        elif optional or absent or prop not in required:
            element.set("minOccurs", "0")
        _xsd_type(inner, element)


def xml_to_data(element: etree._Element, schema: dict[str, Any], defs: dict[str, Any],
             ns: str) -> dict[str, Any]:
    props = schema.get("properties", {})
    data: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments
        qname = etree.QName(child)
        if qname.namespace != ns or qname.localname not in props:
            raise SchemaInvalid(f"unexpected element {qname.localname!r}")
        name = qname.localname
        inner, _, repeated = _field(props[name])
        ref = _ref(inner)
        value: Any = (
            xml_to_data(child, defs[ref], defs, ns) if ref in defs and "properties" in defs[ref]
            else (child.text or "")
        )
        if repeated:
            data.setdefault(name, []).append(value)
        elif name in data:
            raise SchemaInvalid(f"element {name!r} given twice")
        else:
            data[name] = value
    return data


def data_to_xml(parent: etree._Element, data: dict[str, Any], schema: dict[str, Any],
            defs: dict[str, Any], ns: str) -> None:
    for name, prop_schema in schema.get("properties", {}).items():
        value = data.get(name)
        if value is None:
            continue
        inner, _, repeated = _field(prop_schema)
        ref = _ref(inner)
        for item in value if repeated else [value]:
            child = etree.SubElement(parent, f"{{{ns}}}{name}")
            if isinstance(item, dict) and ref in defs:
                data_to_xml(child, item, defs[ref], defs, ns)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = str(item)


def model_schema(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    return schema, schema.get("$defs", {})


def service_wsdl(route: Route, address: str) -> bytes:
    """The WSDL of ``route``'s service with ``address`` as its endpoint."""
    ns = service_namespace(route.service)
    op = operation_name(route)
    answer = route.response_model.__name__
    request_schema, request_defs = model_schema(route.request_model)
    response_schema, response_defs = model_schema(route.response_model)
    nsmap = {"wsdl": WSDL, "soap": WSDL_SOAP, "xsd": XSD, "t": ns, "bus": BUS_NS}
    root = etree.Element(f"{{{WSDL}}}definitions", nsmap=nsmap, targetNamespace=ns,
                         name=op + "Service")
    types = etree.SubElement(root, f"{{{WSDL}}}types")
    bus_xsd = etree.SubElement(types, f"{{{XSD}}}schema", targetNamespace=BUS_NS,
                               elementFormDefault="qualified")
    context = etree.SubElement(bus_xsd, f"{{{XSD}}}element", name="BusContext")
    seq = etree.SubElement(etree.SubElement(context, f"{{{XSD}}}complexType"),
                           f"{{{XSD}}}sequence")
    for name, optional in (("Purpose", False), ("User", False), ("Correlation", True),
                           ("Mode", True)):
        el = etree.SubElement(seq, f"{{{XSD}}}element", name=name, type="xsd:string")
        if optional:
            el.set("minOccurs", "0")
    xsd = etree.SubElement(types, f"{{{XSD}}}schema", targetNamespace=ns,
                           elementFormDefault="qualified")
    for name, schema in {**request_defs, **response_defs}.items():
        if "properties" in schema:
            _complex(xsd, schema, name)
        else:  # an enumeration (a Python Enum) or a scalar given a name
            simple = etree.SubElement(xsd, f"{{{XSD}}}simpleType", name=name)
            restriction = etree.SubElement(simple, f"{{{XSD}}}restriction")
            if "enum" in schema:
                restriction.set("base", "xsd:string")
                for value in schema["enum"]:
                    etree.SubElement(restriction, f"{{{XSD}}}enumeration", value=str(value))
            else:
                probe = etree.Element("probe")
                _xsd_type(schema, probe)
                restriction.set("base", probe.get("type", "xsd:string"))
    _complex(xsd, response_schema, answer, optional=True)
    _complex(etree.SubElement(xsd, f"{{{XSD}}}element", name=op), request_schema, None)
    out = etree.SubElement(etree.SubElement(xsd, f"{{{XSD}}}element", name=op + "Response"),
                           f"{{{XSD}}}complexType")
    out_seq = etree.SubElement(out, f"{{{XSD}}}sequence")
    etree.SubElement(out_seq, f"{{{XSD}}}element", name=answer, type=f"t:{answer}",
                     minOccurs="0")
    for name in ("RequestNumber", "MessageId", "SignedAnswer", "State"):
        etree.SubElement(out_seq, f"{{{XSD}}}element", name=name, type="xsd:string",
                         minOccurs="0")
    result = etree.SubElement(xsd, f"{{{XSD}}}element", name="GetResult")
    etree.SubElement(
        etree.SubElement(etree.SubElement(result, f"{{{XSD}}}complexType"), f"{{{XSD}}}sequence"),
        f"{{{XSD}}}element", name="MessageId", type="xsd:string",
    )

    def message(name: str, element: str) -> None:
        msg = etree.SubElement(root, f"{{{WSDL}}}message", name=name)
        etree.SubElement(msg, f"{{{WSDL}}}part", name="parameters" if element.startswith("t:")
                         else "BusContext", element=element)

    message(op + "Input", f"t:{op}")
    message(op + "Output", f"t:{op}Response")
    message("GetResultInput", "t:GetResult")
    message("BusContextHeader", "bus:BusContext")
    port_type = etree.SubElement(root, f"{{{WSDL}}}portType", name=op + "PortType")
    binding = etree.SubElement(root, f"{{{WSDL}}}binding", name=op + "Binding",
                               type=f"t:{op}PortType")
    etree.SubElement(binding, f"{{{WSDL_SOAP}}}binding", style="document",
                     transport="http://schemas.xmlsoap.org/soap/http")
    for name, header in ((op, True), ("GetResult", False)):
        operation = etree.SubElement(port_type, f"{{{WSDL}}}operation", name=name)
        etree.SubElement(operation, f"{{{WSDL}}}input", message=f"t:{name}Input")
        etree.SubElement(operation, f"{{{WSDL}}}output", message=f"t:{op}Output")
        bound = etree.SubElement(binding, f"{{{WSDL}}}operation", name=name)
        etree.SubElement(bound, f"{{{WSDL_SOAP}}}operation", soapAction=f"{ns}#{name}")
        bound_in = etree.SubElement(bound, f"{{{WSDL}}}input")
        if header:
            etree.SubElement(bound_in, f"{{{WSDL_SOAP}}}header", message="t:BusContextHeader",
                             part="BusContext", use="literal")
        etree.SubElement(bound_in, f"{{{WSDL_SOAP}}}body", use="literal")
        etree.SubElement(etree.SubElement(bound, f"{{{WSDL}}}output"), f"{{{WSDL_SOAP}}}body",
                         use="literal")
    service = etree.SubElement(root, f"{{{WSDL}}}service", name=op + "Service")
    port = etree.SubElement(service, f"{{{WSDL}}}port", name=op + "Port", binding=f"t:{op}Binding")
    etree.SubElement(port, f"{{{WSDL_SOAP}}}address", location=address)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))

