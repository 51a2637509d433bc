"""Errors that the CLI turns into one clear line and exit code 2."""

from __future__ import annotations


class DetoptError(Exception):
    """A user-facing error: bad input, bad campaign directory, missing file.

    The CLI prints ``str(err)`` (no traceback) and exits with code 2.
    """


class StudyError(DetoptError):
    """A study file is malformed or inconsistent.

    Args:
        source: the file the problem is in (or a description such as ``"<dict>"``).
        field: dotted path into the YAML (``parameters.x1.high``), or ``""`` for the whole file.
        message: what is wrong.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source, self.field, self.message = source, field, message
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}")


class CampaignError(DetoptError):
    """A campaign directory cannot be used as asked (exists, changed study, locked...)."""


class InfrastructureError(Exception):
    """The machinery that runs calls is gone (the Ray raylet or GCS died, the driver lost its cluster).

    Not a user error and not the simulator's fault: the campaign stops, the calls in flight are left
    for ``optimize resume`` (neither failed nor charged to the budget) and the CLI exits with code 3.
    ``campaign`` is set to the campaign directory once the loop has recorded the stop.
    """

    campaign: str | None = None
