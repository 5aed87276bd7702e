"""User-facing errors.

Every failure a user can cause (bad file, wrong model, bad flag) is a `WorkbenchError` whose message is a
single line that says what is wrong and, where possible, what to do. The CLI prints it as ``error: ...``
with exit code 2; the app shows it in a dialog. Anything else escaping is a bug.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: one clear line for the user."""

    kind = "error"

    def __init__(self, message: str) -> None:
        # Collapse to one line: messages often embed library errors that span lines.
        one_line = " ".join(str(message).split())
        super().__init__(one_line)

    @property
    def message(self) -> str:
        return str(self)


class AudioError(WorkbenchError):
    kind = "audio"


class CodecError(WorkbenchError):
    kind = "codec"


class WeightsNotFoundError(CodecError):
    kind = "weights"


class ModelFileError(WorkbenchError):
    kind = "model-file"


class UsageError(WorkbenchError):
    kind = "usage"


class DataError(WorkbenchError):
    kind = "data"
