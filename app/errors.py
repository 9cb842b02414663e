"""Errors of the app layer that every entry point turns into a message (no imports: the
command line loads this before it knows whether a command needs the database)."""


class NotAllowedError(Exception):
    """The acting user's role does not allow this."""


class SignInError(Exception):
    """A sign-in was refused; the message never says whether the name exists."""
