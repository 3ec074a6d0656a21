"""A node's settings: the ``BusSettings`` model (``settings``), loading and checking a YAML file
(``loader``), the callback host lists (``callbacks``) and the route table built from the services
(``routes``)."""
