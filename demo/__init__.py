"""Stand-ins for agency systems, and their fictional data, for the demo and the tests.

Nothing here is part of the bus: each module plays one agency with its own storage and its own
native format, so the adapters have something real to translate.

* ``demo.data`` — the fictional people and what each agency knows about them;
* ``demo.residence_registry`` — a REST/JSON agency (propiska records), ``demo.residence_mapping``
  its mapping for the ``rest`` adapter;
* ``demo.cadastre`` — a bare SQLite/PostgreSQL database, ``demo.cadastre_mapping`` its mapping
  for the ``sql`` adapter;
* ``demo.civil_registry`` and ``demo.pension_fund`` — SOAP agencies (``*_mapping`` for the
  ``soap`` adapter); ``demo.education_register`` — a bare database; ``demo.enforcement_bureau``
  and ``demo.social_protection`` — REST/JSON agencies, the latter recording applications;
  ``demo.records`` — what these agencies know; ``demo.agencies`` starts them;
* ``demo.child_benefit``, ``demo.permanent_registration``, ``demo.archive``, ``demo.bundle`` —
  the demo's flows beyond single requests;
* ``demo.servers`` — ``serve_in_thread``: run any ASGI app with uvicorn in a background thread.
"""
