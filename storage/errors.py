"""Errors raised by the storage package."""


class StorageError(Exception):
    """Something stored could not be read or written."""


class ModelNotFoundError(StorageError, LookupError):
    """No saved model has the requested version id."""


class RefusedValueError(StorageError):
    """The database refused a value of what was being stored (too long, invalid text):
    the data's fault, not the connection's, so trying again cannot help."""


class JournalError(StorageError):
    """The fallback journal folder cannot be written."""


class DatabaseError(StorageError):
    """The database failed or could not be reached: trying again later may help.
    ``detail`` is the driver's error in one line, without SQL or passwords."""

    def __init__(self, detail: str):
        super().__init__(f"the database failed ({detail})")
        self.detail = detail


class StreamConflictError(StorageError):
    """A live stream's batch does not follow what is stored (another writer stored one
    first), or another writer holds the stream: nothing of the batch was stored."""
