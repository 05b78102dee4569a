"""Request-body validation with JSON schemas, worded as Nova words it.

The message names the field, the value and the rule, so the caller knows
what to fix; nothing is changed when validation fails.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from transcell import exception


def _field(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and path == []:
        return "body"
    return "/".join(path) if path else str(error.schema_path[-1] if error.schema_path else "")


def validate(schema: dict[str, Any], body: Any) -> None:
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    if error.validator == "additionalProperties":
        raise exception.Invalid(f"Additional properties are not allowed ({_unexpected(error)})")
    if error.validator == "required":
        field = "/".join(str(p) for p in error.absolute_path) or "body"
        raise exception.ValidationError(field=field, reason=error.message)
    raise exception.Invalid(f"Invalid input for field/attribute {_field(error)}. "
                            f"Value: {error.instance}. {error.message}")


def _unexpected(error: jsonschema.ValidationError) -> str:
    return error.message.split("(", 1)[-1].rstrip(")") if "(" in error.message else error.message
