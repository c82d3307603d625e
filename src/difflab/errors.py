"""User-facing errors.

Everything a user can get wrong (a path, a value, a file) raises `UserError` with one line that
names the problem and the fix. The CLI prints it as ``difflab: error: ...`` and exits with code 2;
the Python API lets it propagate (it is a `ValueError`, so ``except ValueError`` keeps working).
"""

import typing


class UserError(ValueError):
    """Bad input from the user: one line, names the value and the fix. A line break inside a value it quotes
    (a key of a damaged file, a user's text) is shown escaped, so the message stays one line."""

    def __init__(self, message: str = "", *args) -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"), *args)


class Stopped(UserError):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM after saving its state: not a mistake, so the CLI prints
    ``difflab: stopped by ...`` (no "error") and exits 128 + the signal number (130, 143), as shells expect.
    A `UserError` still, so callers that catch those keep working."""

    EXIT: typing.ClassVar[dict[str, int]] = {"SIGINT": 130, "SIGTERM": 143}

    def __init__(self, message: str, signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.signal_name, self.exit_code = signal_name, self.EXIT.get(signal_name, 130)

    def __reduce__(self):  # rebuilt whole in another process (a sweep's or DDP's worker)
        return (Stopped, (str(self), self.signal_name))
