"""User-facing errors.

Everything a user can get wrong (a path, a value, a file) raises `UserError` with one line that
names the problem and the fix. The CLI prints it as ``difflab: error: ...`` and exits with code 2;
the Python API lets it propagate (it is a `ValueError`, so ``except ValueError`` keeps working).
"""


class UserError(ValueError):
    """Bad input from the user: one line, names the value and the fix."""
