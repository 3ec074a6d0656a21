"""A running node wired from its settings (``wiring.Node``) and the trust it builds (``trust``)."""
