"""Domain errors. ``api/`` maps each kind to an HTTP status once (RFC 9457 problem+json)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def at_index(self, index: int) -> DomainError:
        """The same error, naming the item of a batch it belongs to (``Event 3: …``, ``index=3``)."""
        self.details.setdefault("index", index)
        self.message = f"Event {index}: {self.message}"
        self.args = (self.message,)
        return self


class NotFound(DomainError):
    """The thing asked for does not exist (or the actor may not know it exists)."""

    code = "not_found"


class Unauthenticated(DomainError):
    """No valid credentials were presented."""

    code = "unauthenticated"


class TooManyAttempts(DomainError):
    """Too many tries in a row: refused for ``retry_after`` seconds, whatever is sent."""

    code = "too_many_attempts"


class Forbidden(DomainError):
    """The actor is known but its organisation or role does not allow this."""

    code = "forbidden"


class Conflict(DomainError):
    """The request contradicts the current state (duplicate, reused key, ...)."""

    code = "conflict"


class Corrupt(DomainError):
    """Stored data fails its own integrity check: it was changed behind the application's back, or damaged."""

    code = "corrupt"


class RuleViolation(DomainError):
    """Input breaks a business rule; ``code`` says which, machine-readably."""

    code = "rule_violation"


class InvalidIdentifier(RuleViolation):
    """A GTIN, GLN, lot code or other identifier is malformed."""

    code = "invalid_identifier"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        value = details.get("value")
        if isinstance(value, str) and len(value) > SHOWN:
            details["value"] = value[:SHOWN] + "…"  # a 5,000-character path is not echoed back whole
        super().__init__(message, code=code, **details)


SHOWN = 48  # characters of a refused value that a message quotes


def shown(value: str) -> str:
    """A refused value as a message quotes it: whole when short, else its start and its length."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}… ({len(value)} characters)"
