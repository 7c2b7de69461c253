"""Domain errors of carrier feeds. The API's one exception handler turns them into
`{"error": code, "detail": ..., "fields": ...}` (control_tower/api/errors.py)."""

from __future__ import annotations

from control_tower.errors import DomainError


class PayloadError(DomainError):
    """The carrier's body is not what its adapter reads: `path` says where (a JSON path such
    as `data.events[3].occurred_at`). Nothing of the body is stored."""

    code = "invalid_payload"
    status_code = 400

    def __init__(self, message: str, *, path: str = "$"):
        super().__init__(f"{path}: {message}", fields={path: [message]})
        self.path = path
        self.message = message


class FeedConfigError(DomainError):
    """A feed configuration (adapter name, JSON paths, mapping tables, file columns) that
    cannot work; `fields` names each problem by its place in the config."""

    code = "validation_error"
    status_code = 400


class FileRejected(DomainError):
    """An uploaded file that cannot be read at all (type, size, encoding, header)."""

    code = "invalid_file"
    status_code = 400


class UnsupportedFileType(FileRejected):
    code = "unsupported_media_type"
    status_code = 415


class RowErrors(DomainError):
    """A file with row errors: nothing was applied. `fields["rows"]` lists
    `{"line": n, "column": name, "message": text}`."""

    code = "invalid_rows"
    status_code = 400

    def __init__(self, errors: list[dict], *, import_id: int | None = None):
        first = errors[0]
        super().__init__(
            f"Line {first['line']}, {first['column']}: {first['message']} "
            f"({len(errors)} error(s) in all); nothing was applied.",
            fields={"rows": errors, **({"import": import_id} if import_id else {})},
        )
        self.errors = errors


class SignatureInvalid(DomainError):
    """The feed is signed and the body's signature is missing or wrong: nothing is stored."""

    code = "invalid_signature"
    status_code = 401
