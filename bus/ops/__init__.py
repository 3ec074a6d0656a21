"""What operators watch and act on: Prometheus metrics, readiness checks, structured logs, and
the header-only view of dead letters."""
