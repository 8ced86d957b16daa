"""One error type for bad user input: the CLI turns it into a one-line message and exit code 2."""


class InputError(ValueError):
    """Bad user input. The message names the value and the constraint it breaks, on one line."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)
