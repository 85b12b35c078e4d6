"""Domain errors raised by the stores and mapped to HTTP once, in web.errors."""


class StoreError(Exception):
    """Base class of the errors a store raises on purpose."""

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(StoreError):
    """The item asked for does not exist."""


class Conflict(StoreError):
    """The write collides with what is stored (duplicate key, taken name)."""


class PreconditionFailed(StoreError):
    """The item changed since the version the caller named (If-Match)."""


class Gone(StoreError):
    """The item existed but can no longer be used (expired, deleted)."""


class Unavailable(StoreError):
    """The backend cannot be reached; the request may succeed later."""
