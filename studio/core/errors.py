"""Domain errors. The edges (CLI, HTTP, GUI) map them to exit codes, statuses and dialogs."""


class StudioError(Exception):
    """Base of every error the product reports to a person."""


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
