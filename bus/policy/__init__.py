"""The rules an exchange passes through: access rights, rate limits, the circuit breaker, the
retry policy and which callback addresses are allowed."""
