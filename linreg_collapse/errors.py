"""Errors the CLI reports in one line: bad user input (exit code 2) and resource failures (exit code 1)."""


class InputError(ValueError):
    """Bad user input. The message names the value and the constraint it breaks, on one line."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)


class ResourceError(RuntimeError):
    """A run that failed for want of a resource (memory, a device) after it started; one-line message."""
