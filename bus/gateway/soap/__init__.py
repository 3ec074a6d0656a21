"""The SOAP gateway: the endpoint, the WSDL generated from a service's shared schema, and the
checks of XMLDSig-signed requests."""
