"""The tracking domain's errors. Services raise them; the API exception handler
(control_tower/api/errors.py) turns every `DomainError` into the 4xx JSON body, so views and
serializers translate nothing by hand."""

from __future__ import annotations

from collections import defaultdict

from control_tower.errors import DomainError


class InvalidInput(DomainError):
    """A field breaks a rule of the domain (400 `validation_error`, naming the field)."""

    code = "validation_error"
    status_code = 400

    @classmethod
    def on(cls, field: str, message: str) -> InvalidInput:
        return cls(message, fields={field: [message]})


class NotFound(DomainError):
    """The object is not in the actor's organization (or carrier): 404, never a hint that it
    exists elsewhere."""

    code = "not_found"
    status_code = 404


class Infeasible(DomainError):
    """The input is valid but no plan can serve any of it (422)."""

    code = "infeasible"
    status_code = 422


class ItemErrors:
    """Problems of a list input collected as `{index: {field: [messages]}}`, raised together as
    one `InvalidInput` filed under the list's name (the shape bulk endpoints answer with)."""

    def __init__(self, list_name: str):
        self.list_name = list_name
        self.errors: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def add(self, index: int, field: str, message: str) -> None:
        self.errors[index][field].append(message)

    def items(self):
        """`(index, field, message)` for every problem, in index order."""
        for index in sorted(self.errors):
            for field, messages in self.errors[index].items():
                for message in messages:
                    yield index, field, message

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self, detail: str = "The request has invalid fields.") -> None:
        if self.errors:
            by_index = {str(i): dict(fields) for i, fields in sorted(self.errors.items())}
            raise InvalidInput(detail, fields={self.list_name: by_index})
