"""Every failure a user can meet, with its documented exit code.

Exit codes are stable: scripts rely on them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DRIFT = 3
EXIT_LOCKED = 4

EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM is 143

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 operation failed, 2 bad usage or configuration, "
    "3 drift found (reconcile --check), 4 environment locked, "
    "130/143 interrupted (Ctrl-C/SIGTERM)."
)


class SdeliverError(Exception):
    """A failure with a message for a person and an exit code for a script."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  {self.hint}"


class OperationFailed(SdeliverError):
    exit_code = EXIT_FAILED


class UsageError(SdeliverError):
    exit_code = EXIT_USAGE


class ConfigError(SdeliverError):
    exit_code = EXIT_USAGE


class DriftFound(SdeliverError):
    exit_code = EXIT_DRIFT


class EnvironmentLocked(SdeliverError):
    exit_code = EXIT_LOCKED


class Interrupted(SdeliverError):
    """Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143) stopped a command; what it left is
    in the message."""

    def __init__(self, message: str, *, hint: str | None = None,
                 signal_name: str = "SIGINT") -> None:
        super().__init__(message, hint=hint)
        self.signal_name = signal_name
        self.exit_code = 143 if signal_name == "SIGTERM" else 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so that the same put-back runs."""

    signal_name = "SIGTERM"


class AwsError(OperationFailed):
    """An AWS call failed for a reason retries cannot fix."""

    def __init__(self, message: str, *, code: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
