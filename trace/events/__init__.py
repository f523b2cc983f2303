"""The event log: capture (with rules and idempotency), the hash chain, queries."""
