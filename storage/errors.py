"""Errors raised by the storage package."""


class StorageError(Exception):
    """Something stored could not be read or written."""


class ModelNotFoundError(StorageError, LookupError):
    """No saved model has the requested version id."""
