"""The embedded transport: durable queues in one SQLite file (``transport``; its SQL in ``sql``)."""
