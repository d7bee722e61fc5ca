"""`Secret`: a credential that no repr, log line, traceback local or pickle shows."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["Secret"]


class Secret:
    """Holds an API key or a connection string with a password; `reveal` is the only way out.

    Pickling is refused: a pickle is a file, a queue message or a cache entry, and the credential
    would travel with it. Rebuild the owner from configuration in the other process instead.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The credential itself, for the one call that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a secret (API key or password) cannot be pickled; build the object that holds it "
            "from configuration in the receiving process"
        )
