"""Errors raised by the wire codecs: bytes in, a typed message or a `ParseError` out."""


class ParseError(ValueError):
    """Untrusted input could not be decoded. `reason` is safe to show to the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
