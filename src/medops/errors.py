"""The one exception hierarchy of medops.

Nothing here knows about HTTP: api/errors.py maps each class to a status code and an
RFC 9457 problem type, and the CLI prints ``str(exc)`` on one line. Each class's ``code`` is
the stable slug that ends its problem ``type`` URI (``urn:medops:problem:<code>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# How much of a client's input an error repeats. A piece of input named in an error (a key,
# a column name, a value) is cut to ECHO_LIMIT characters where the error is made; whatever
# the maker forgot, an error never carries more than these (so no error body, audit reason or
# CLI line grows with the input).
ECHO_LIMIT: Final = 64
FIELD_LIMIT: Final = 200
REASON_LIMIT: Final = 300
MESSAGE_LIMIT: Final = 1000
MAX_FIELD_ERRORS: Final = 100
ELLIPSIS: Final = "\u2026"


def clip(text: object, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to its first ``limit`` characters, followed by an ellipsis when cut."""
    value = str(text)
    return value if len(value) <= limit else value[:limit] + ELLIPSIS


@dataclass(frozen=True)
class FieldError:
    """One bad input field: where it is (dotted path) and why it was refused."""

    field: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", clip(self.field, FIELD_LIMIT))
        object.__setattr__(self, "reason", clip(self.reason, REASON_LIMIT))


class MedopsError(Exception):
    """Base of every error medops raises on purpose."""

    code = "error"
    title = "medops error"

    def __init__(
        self,
        message: str,
        *,
        errors: list[FieldError] | None = None,
        audited: bool = False,
    ) -> None:
        message = clip(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.message = message
        self.errors = (errors or [])[:MAX_FIELD_ERRORS]
        # True when the raiser already wrote the failure's audit record (e.g. a failed login).
        self.audited = audited
        # The HTTP status when the SDK rebuilt this error from a server's problem+json.
        self.status: int | None = None

    def __str__(self) -> str:
        return self.message


class ConfigurationError(MedopsError):
    """Raised at start when a ``MEDOPS_*`` setting is missing or invalid."""

    code = "configuration-error"
    title = "Invalid configuration"


class NotInitializedError(MedopsError):
    """Raised when the home or database has not been set up with ``medops init``."""

    code = "not-initialized"
    title = "medops is not initialized"


class InvalidInputError(MedopsError):
    """Raised when a request or command argument is malformed or breaks a rule."""

    code = "invalid-input"
    title = "Invalid input"


class MalformedRequestError(InvalidInputError):
    """Raised when a request body cannot be parsed at all (e.g. broken JSON)."""

    code = "malformed-request"
    title = "Malformed request body"


class RequestTooLargeError(InvalidInputError):
    """Raised when a request body exceeds ``MEDOPS_MAX_REQUEST_BYTES``."""

    code = "request-too-large"
    title = "Request body too large"


class NotFoundError(MedopsError):
    """Raised when the named resource does not exist (or the caller may not know it does)."""

    code = "not-found"
    title = "Not found"


class MethodNotAllowedError(MedopsError):
    """Raised when a resource exists but does not accept the request's method."""

    code = "method-not-allowed"
    title = "Method not allowed"


class ConflictError(MedopsError):
    """Raised when a change collides with the current state (e.g. a duplicate name)."""

    code = "conflict"
    title = "Conflict"


class InvalidArtifactError(InvalidInputError):
    """Raised when an uploaded model artifact is not a loadable ONNX model (corrupt, a pickle,
    an archive or another executable format, or operators outside the allowed domains)."""

    code = "invalid-artifact"
    title = "Model artifact refused"


class SignatureMismatchError(InvalidInputError):
    """Raised when a model signature does not match the ONNX graph's inputs or outputs, or
    data does not match the signature."""

    code = "signature-mismatch"
    title = "Model signature does not match"


class ParityFailedError(InvalidInputError):
    """Raised when the ONNX model's outputs differ from the native model's beyond tolerance."""

    code = "parity-failed"
    title = "ONNX outputs differ from the native model"


class NotQuantizableError(InvalidInputError):
    """Raised when INT8 quantization of a model version would gain nothing: none of its
    operators is one ONNX Runtime's dynamic quantization handles (tree and linear ONNX-ML
    models), or the version is already a quantization."""

    code = "not-quantizable"
    title = "Nothing to quantize"


class PackagingError(InvalidInputError):
    """Raised on the registering user's side when a model cannot be converted to ONNX."""

    code = "packaging-failed"
    title = "Model cannot be packaged"


class DuplicateVersionError(ConflictError):
    """Raised when a model already has a version with the same artifact digest."""

    code = "duplicate-version"
    title = "Version already registered"


class PromotionBlockedError(ConflictError):
    """Raised when moving a protected alias fails one or more gates; ``errors`` lists each."""

    code = "promotion-blocked"
    title = "Promotion gates not met"


class GovernedChangeError(ConflictError):
    """Raised when a change needs signatures first: a promotion policy change that loosens
    the policy goes through a signed policy change (two people, one a clinician)."""

    code = "governed-change"
    title = "Change needs signatures"


class ExplanationError(MedopsError):
    """Raised when an explanation cannot be given honestly: the contributions would not add
    up to the model output, or the model cannot be explained with the data given."""

    code = "explanation-failed"
    title = "Explanation failed"


class AuthenticationError(MedopsError):
    """Raised when credentials are missing, wrong, expired or revoked."""

    code = "unauthenticated"
    title = "Authentication required"


class MfaRequiredError(AuthenticationError):
    """Raised when the password was right but the account's one-time code is missing."""

    code = "mfa-required"
    title = "One-time code required"


class TooManyAttemptsError(MedopsError):
    """Raised while a username is locked after repeated failed logins."""

    code = "too-many-attempts"
    title = "Too many failed attempts"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 0,
        errors: list[FieldError] | None = None,
        audited: bool = False,
    ) -> None:
        super().__init__(message, errors=errors, audited=audited)
        self.retry_after = retry_after


class PermissionDeniedError(MedopsError):
    """Raised when an authenticated actor lacks the permission an action needs."""

    code = "forbidden"
    title = "Permission denied"


class CsrfError(PermissionDeniedError):
    """Raised when a state-changing browser request lacks the session's CSRF token."""

    code = "csrf-failed"
    title = "CSRF token missing or wrong"


class ActionRequiredError(PermissionDeniedError):
    """Raised when a login must first change its password or enroll in MFA."""

    code = "action-required"
    title = "Another step is required first"


class SeparationOfDutiesError(PermissionDeniedError):
    """Raised when a user would approve a model version they registered, or sign twice."""

    code = "separation-of-duties"
    title = "Separation of duties"


class IntegrityError(MedopsError):
    """Raised when stored content no longer matches its digest (corruption or tampering)."""

    code = "integrity-error"
    title = "Stored content failed its integrity check"


class AuditTamperedError(IntegrityError):
    """Raised when the audit checkpointer refuses to sign records that fail verification
    (a forged, unanchored or backdated chain, a record without a valid MAC, a broken link)."""

    code = "audit-tampered"
    title = "Audit log failed verification"


class ServiceUnavailableError(MedopsError):
    """Raised when a dependency (database, audit log) is down; the action was not done."""

    code = "service-unavailable"
    title = "Service unavailable"


class AuditUnavailableError(ServiceUnavailableError):
    """Raised when an audit record cannot be made durable; the action fails closed."""

    code = "audit-unavailable"
    title = "Audit log unavailable"


class ShedError(ServiceUnavailableError):
    """Raised when a prediction would miss its deadline in the queue; it was not run."""

    code = "overloaded"
    title = "Overloaded: request shed"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(message, errors=errors)
        self.retry_after = retry_after


class RemoteError(MedopsError):
    """Raised by the SDK when a server answers with a problem it does not map to a subclass."""

    code = "remote-error"
    title = "Server error"


class ConnectionFailedError(MedopsError):
    """Raised by the SDK when the server at ``MEDOPS_URL`` cannot be reached."""

    code = "connection-failed"
    title = "Cannot reach the server"


ALL_ERRORS: tuple[type[MedopsError], ...] = (
    MedopsError,
    ConfigurationError,
    NotInitializedError,
    InvalidInputError,
    MalformedRequestError,
    RequestTooLargeError,
    NotFoundError,
    MethodNotAllowedError,
    ConflictError,
    InvalidArtifactError,
    SignatureMismatchError,
    ParityFailedError,
    NotQuantizableError,
    PackagingError,
    DuplicateVersionError,
    PromotionBlockedError,
    GovernedChangeError,
    ExplanationError,
    SeparationOfDutiesError,
    AuthenticationError,
    MfaRequiredError,
    TooManyAttemptsError,
    PermissionDeniedError,
    CsrfError,
    ActionRequiredError,
    IntegrityError,
    AuditTamperedError,
    ServiceUnavailableError,
    AuditUnavailableError,
    ShedError,
    RemoteError,
    ConnectionFailedError,
)

BY_CODE: dict[str, type[MedopsError]] = {cls.code: cls for cls in ALL_ERRORS}
