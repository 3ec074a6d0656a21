"""Requests answered by a person: the ``manual`` adapter kind that files them, the operator inbox
that holds them (``store``, SQLite or PostgreSQL), and the desk that answers them (``desk``)."""
