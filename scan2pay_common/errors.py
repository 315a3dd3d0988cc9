"""The exception every validator in this package raises."""


class InvalidValue(ValueError):
    """A value that breaks the contract.

    ``code`` is a stable machine-readable reason (it becomes the API error
    code), ``field`` names what was wrong when there is a field to name.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
