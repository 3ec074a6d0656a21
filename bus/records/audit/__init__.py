"""The audit log: entries and their hash chain with the SQLite store (``log``), and the same
contract in PostgreSQL (``postgres``)."""
