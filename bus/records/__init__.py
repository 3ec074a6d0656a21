"""What a node keeps about exchanges: documents (signed answers under request numbers),
asynchronous results, their retention, and the hash-chained audit log (``records.audit``)."""
