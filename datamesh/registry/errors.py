"""Errors of the schema registry, with the Confluent Schema Registry error codes.

Every failure a client can cause is a ``RegistryError`` carrying the HTTP status, the Confluent
``error_code`` and a message; the HTTP layer turns it into ``{"error_code": ..., "message": ...}``
so clients written for Confluent (which switch on ``error_code``) behave the same here.
"""

from __future__ import annotations

from typing import Any

# Confluent error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors).
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED = 40408
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
STORE_ERROR = 50001


class RegistryError(Exception):
    """A failure with its HTTP status and Confluent error code; safe to show to the client."""

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The Confluent error body: ``{"error_code": int, "message": str}``."""
        return {"error_code": self.error_code, "message": self.message}


def bad_request(message: str) -> RegistryError:
    """A request that is not well-formed (e.g. a body that is not JSON); Confluent answers 400."""
    return RegistryError(400, 400, message)


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def version_not_found(version: int) -> RegistryError:
    return RegistryError(404, VERSION_NOT_FOUND, f"Version {version} not found.")


def schema_not_found(schema_id: int | None = None) -> RegistryError:
    text = "Schema not found" if schema_id is None else f"Schema {schema_id} not found"
    return RegistryError(404, SCHEMA_NOT_FOUND, text)


def subject_soft_deleted(subject: str) -> RegistryError:
    message = f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
    return RegistryError(404, SUBJECT_SOFT_DELETED, message)


def subject_not_soft_deleted(subject: str) -> RegistryError:
    message = f"Subject '{subject}' was not deleted first before being permanently deleted"
    return RegistryError(404, SUBJECT_NOT_SOFT_DELETED, message)


def version_soft_deleted(subject: str, version: int) -> RegistryError:
    message = (
        f"Subject '{subject}' Version {version} was soft deleted. "
        "Set permanent=true to delete permanently"
    )
    return RegistryError(404, VERSION_SOFT_DELETED, message)


def version_not_soft_deleted(subject: str, version: int) -> RegistryError:
    message = (
        f"Subject '{subject}' Version {version} was not deleted first "
        "before being permanently deleted"
    )
    return RegistryError(404, VERSION_NOT_SOFT_DELETED, message)


def subject_level_not_configured(subject: str) -> RegistryError:
    message = f"Subject '{subject}' does not have subject-level compatibility configured"
    return RegistryError(404, SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED, message)


def incompatible(subject: str, reasons: list[str]) -> RegistryError:
    """409: the schema breaks the subject's compatibility level; ``reasons`` say how."""
    message = (
        "Schema being registered is incompatible with an earlier schema for subject "
        f'"{subject}", details: [{", ".join(reasons)}]'
    )
    return RegistryError(409, INCOMPATIBLE_SCHEMA, message)


def invalid_schema(reason: str) -> RegistryError:
    return RegistryError(422, INVALID_SCHEMA, f"Invalid schema: {reason}")


def invalid_version(version: str) -> RegistryError:
    message = (
        f"The specified version '{version}' is not a valid version id. Allowed values are "
        'between [1, 2^31-1] and the string "latest"'
    )
    return RegistryError(422, INVALID_VERSION, message)


def invalid_compatibility_level(level: object) -> RegistryError:
    message = (
        f"Invalid compatibility level {level!r}. Valid values are none, backward, forward, full, "
        "backward_transitive, forward_transitive, and full_transitive"
    )
    return RegistryError(422, INVALID_COMPATIBILITY_LEVEL, message)


def store_error(reason: str) -> RegistryError:
    return RegistryError(500, STORE_ERROR, f"Error in the backend data store: {reason}")
