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


class Pruned(Gone):
    """The change log no longer holds every change after the ``since`` asked for.

    ``floor``: the changes after it are still there; those up to it were
    removed by retention (:meth:`db.notes.base.NotesStore.prune_log`).
    """

    def __init__(self, floor: int):
        super().__init__(f"the change log holds only the changes after {floor}")
        self.floor = floor


class Unavailable(StoreError):
    """The backend cannot be reached; the request may succeed later."""
