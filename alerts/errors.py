"""Errors raised by the alerts package."""


class AlertError(Exception):
    """An alert could not be built or sent."""


class DeliveryError(AlertError):
    """The message was not delivered. ``temporary`` failures are worth retrying."""

    def __init__(self, message: str, *, temporary: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.attempts = attempts
