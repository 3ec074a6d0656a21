"""The core of every exchange, needing nothing else of the bus: the envelope, the error tree,
sealing (sign and verify), the replay guard, and the one way a node opens its SQLite files."""
