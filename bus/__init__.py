"""The bus core: envelope, configuration, routing, access, node, gateways and transports."""
