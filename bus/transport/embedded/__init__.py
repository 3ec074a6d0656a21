"""The embedded transport: durable queues in one SQLite file, owned by the node on one machine.

``transport`` (``EmbeddedTransport``: consumers and their wake-ups, requests and replies) works
on ``queue_file`` (``QueueFile``: the file, its lock, every read and write of it, in-flight rows
handed back, dead letters), whose schema and statements are in ``sql``; ``outbox`` writes
requests off the event loop, ``doorbell`` wakes another process's reply consumer.
"""
