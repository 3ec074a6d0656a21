"""How members reach a node: the HTTP app (``app``), its asking parameters and problem documents,
bundles, asynchronous requests, documents and citizen pages, the operator's inbox pages, and the
SOAP gateway (``gateway.soap``)."""
