"""The API's errors: ``{"error": {"type", "message"}}`` with an HTTP status (trio-free)."""

from __future__ import annotations

from starlette.responses import JSONResponse

STATUS_OF_ERROR = {
    "BadRequest": 400,
    "NotSerializable": 400,
    "ConfigurationError": 400,
    "TaskNotRegistered": 404,
    "TaskNotFound": 404,
    "PayloadTooLarge": 413,
    "QueueFull": 503,
    "ShuttingDown": 503,
}
"""The HTTP status of each error type a submission can meet (others: 500)."""


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message

    @classmethod
    def refused(cls, exc: Exception) -> ApiError:
        """The answer to an error the control plane raised (by its type's name)."""
        name = type(exc).__name__
        return cls(STATUS_OF_ERROR.get(name, 500), name, str(exc))

    def response(self) -> JSONResponse:
        """This error as the API's error body."""
        return error_response(self.status, self.type, self.message)


def error_response(status: int, type: str, message: str) -> JSONResponse:
    """The API's error body."""
    return JSONResponse({"error": {"type": type, "message": message}}, status_code=status)
