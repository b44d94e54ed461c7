"""Errors the use cases raise; the web layer maps each kind to one HTTP status and a stable code."""

from __future__ import annotations


class DomainError(Exception):
    code = "badRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "notFound"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "badRequest"


class NotAllowed(DomainError):
    """The action is not possible for this object in its current state (e.g. wipe of a retired device)."""

    code = "actionNotAllowed"


class PreconditionMissing(DomainError):
    """Something the administrator must set up first is missing (e.g. no APNs certificate yet)."""

    code = "preconditionFailed"
