"""Domain errors. The edges (CLI, HTTP, GUI) map them to exit codes, statuses and dialogs."""

from studio.core.printable import printable


class StudioError(Exception):
    """Base of every error the product reports to a person.

    A message naming a file whose name is not UTF-8 is made printable here, once: it is
    stored in the jobs table, sent as JSON and printed, and each of those refuses surrogates.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(printable(a) if isinstance(a, str) else a for a in args))


class InputError(StudioError):
    """The user's input is wrong: a bad file, a bad column, a bad request."""


class NotFoundError(InputError):
    """A named dataset, model or version does not exist."""


class IntegrityError(StudioError):
    """Stored data does not match its recorded digest."""


class Cancelled(StudioError):
    """The user stopped the work."""


class Abandoned(Cancelled):
    """The process that asked for the work went away (a killed terminal, a crashed app):
    not a Stop, so nothing half-done is kept."""


class BusyError(StudioError):
    """The server has more work queued than it takes: try again shortly (HTTP 503)."""
