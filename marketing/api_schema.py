"""The OpenAPI schema's error answers: every operation documents the errors it can give.

drf-spectacular documents the success answer (and a 400 where a view declares one). Clients and
the schema-driven fuzz test also need the errors every endpoint may answer with, and their body:
``{"detail": "…"}``, or for a 400 on input ``{"field": ["message", …], …}`` (nested for nested
fields, ``non_field_errors`` for the object as a whole).
"""

ERROR_SCHEMA = "Error"
ERRORS = {
    "400": "The request is invalid: each field named in the body says what to change.",
    "401": "No API key was sent, or it is unknown or revoked.",
    "403": "The key may not do this (a write key outside tracking, or a role without the permission).",
    "404": "No such object in the key's organisation (or no such page).",
    "413": "The request body is over this route's size limit.",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "429": "Too many requests: retry after the number of seconds in Retry-After.",
}


def error_responses(result: dict, generator, request, public) -> dict:
    """A drf-spectacular post-processing hook: adds the ``Error`` schema and, to every
    operation, the error answers it does not document yet; a 400 that a view documents with a
    body of its own also accepts the generic error body (input that fails to parse has no other)."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA] = {
        "type": "object",
        "description": "`detail` says what went wrong; a 400 on input maps each field to its messages.",
        "properties": {
            "detail": {
                "description": "What went wrong (a list of messages where the input had a field named detail).",
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            }
        },
        "additionalProperties": True,
    }
    error = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                documented = responses.get(code)
                if documented is None:
                    responses[code] = {"description": description, "content": {"application/json": {"schema": error}}}
                    continue
                for media in documented.get("content", {}).values():
                    schema = media.get("schema")
                    if schema and schema != error:
                        media["schema"] = {"anyOf": [schema, error]}
    return result
