"""Errors a user can cause: shown as one line, exit code 2, no traceback unless --debug."""


class UserError(Exception):
    """A mistake in input or configuration that the user can fix; the message says how."""


class NotFound(UserError):
    """A named thing (tenant, service, report) does not exist."""
