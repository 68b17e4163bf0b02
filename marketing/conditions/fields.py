"""What each subject's paths are: the model lookup behind a path, and its type.

Types: ``string``, ``number``, ``boolean``, ``datetime`` (compared as ISO-8601 text),
``names`` (a list of tag names or list slugs, tested with ``in``). Custom properties take the
type of their ``PropertyDefinition``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from marketing.field_encryption import BIDX
from marketing.models import PropertyDefinition

STRING, NUMBER, BOOLEAN, DATETIME, NAMES, JSON_LIST = "string", "number", "boolean", "datetime", "names", "list"


@dataclass(frozen=True)
class FieldInfo:
    path: str
    lookup: str  # Django lookup path, or for properties the JSON field's lookup
    type: str
    nullable: bool = False
    json_key: str | None = None  # set for custom properties: the key inside ``lookup``
    # Encrypted at rest (marketing.field_encryption): only is set, is empty and equals, the last
    # through ``index`` (the blind index's lookup) and the index's ``purpose``.
    encrypted: bool = False
    index: str | None = None
    purpose: str = "phone"


CONTACT = {
    "id": FieldInfo("id", "pk", NUMBER),
    "email": FieldInfo("email", "email", STRING, nullable=True),
    "external_id": FieldInfo("external_id", "external_id", STRING, nullable=True),
    "first_name": FieldInfo("first_name", "first_name", STRING),
    "last_name": FieldInfo("last_name", "last_name", STRING),
    "phone": FieldInfo("phone", "phone", STRING, encrypted=True, index="phone_bidx"),
    "job_title": FieldInfo("job_title", "job_title", STRING),
    "country": FieldInfo("country", "country", STRING),
    "time_zone": FieldInfo("time_zone", "time_zone", STRING),
    "locale": FieldInfo("locale", "locale", STRING),
    "lifecycle_stage": FieldInfo("lifecycle_stage", "lifecycle_stage", STRING),
    "lead_status": FieldInfo("lead_status", "lead_status", STRING),
    "owner": FieldInfo("owner", "owner_id", NUMBER, nullable=True),
    "created_at": FieldInfo("created_at", "created_at", DATETIME),
    "last_activity_at": FieldInfo("last_activity_at", "last_activity_at", DATETIME, nullable=True),
    "score": FieldInfo("score", "score", NUMBER),
    "tags": FieldInfo("tags", "tags__name", NAMES),
    "lists": FieldInfo("lists", "lists__slug", NAMES),
    "company.name": FieldInfo("company.name", "company__name", STRING, nullable=True),
    "company.domain": FieldInfo("company.domain", "company__domain", STRING, nullable=True),
    "company.industry": FieldInfo("company.industry", "company__industry", STRING, nullable=True),
    "company.size": FieldInfo("company.size", "company__size", NUMBER, nullable=True),
    "company.revenue": FieldInfo("company.revenue", "company__revenue", NUMBER, nullable=True),
}
EVENT = {
    "type": FieldInfo("type", "type", STRING),
    "occurred_at": FieldInfo("occurred_at", "occurred_at", DATETIME),
}
COMPANY = {
    "name": FieldInfo("name", "name", STRING),
    "domain": FieldInfo("domain", "domain", STRING, nullable=True),
    "industry": FieldInfo("industry", "industry", STRING),
    "size": FieldInfo("size", "size", NUMBER, nullable=True),
    "revenue": FieldInfo("revenue", "revenue", NUMBER, nullable=True),
}
SUBJECTS = {"contact": CONTACT, "event": EVENT, "company": COMPANY}
# Where each subject's custom properties live: path prefix -> (JSON field lookup, definition subject).
PROPERTY_PREFIXES = {
    "contact": {
        "properties.": ("properties", PropertyDefinition.Subject.CONTACT),
        "company.properties.": ("company__properties", PropertyDefinition.Subject.COMPANY),
    },
    "event": {"properties.": ("properties", PropertyDefinition.Subject.EVENT)},
    "company": {"properties.": ("properties", PropertyDefinition.Subject.COMPANY)},
}
PROPERTY_TYPES = {
    "string": STRING,
    "enum": STRING,
    "number": NUMBER,
    "boolean": BOOLEAN,
    "datetime": DATETIME,
    "list": JSON_LIST,
}


def field_info(subject: str, path: str, *, org) -> FieldInfo | None:
    """The field behind ``path`` for ``subject`` in ``org``, or None when there is none."""
    if path in SUBJECTS[subject]:
        return SUBJECTS[subject][path]
    for prefix, (json_field, definition_subject) in PROPERTY_PREFIXES[subject].items():
        if path.startswith(prefix):
            key = path[len(prefix) :]
            definition = PropertyDefinition.objects.filter(org=org, subject=definition_subject, key=key).first()
            if definition is None:
                return None
            if definition.sensitive:  # stored as {"$enc": …, "$bidx": …}: equality through the index
                return FieldInfo(
                    path,
                    json_field,
                    PROPERTY_TYPES[definition.type],
                    nullable=True,
                    json_key=key,
                    encrypted=True,
                    index=f"{json_field}__{key}__{BIDX}",
                    purpose=f"property:{key}",
                )
            return FieldInfo(path, json_field, PROPERTY_TYPES[definition.type], nullable=True, json_key=key)
    return None


# A namespace's fields (``workflow.*``) depend on the thing that owns them, which lives in an app
# above this one: that app registers a provider here and the rule builder asks it by name.
_field_providers: dict[str, Callable[..., list[dict]]] = {}


def namespace_fields_register(name: str, provider: Callable[..., list[dict]]) -> None:
    """Registers ``provider(*, org, ref, event_types) -> [{"path", "label", "group", "type"}]``:
    the paths under ``name.`` that the object ``ref`` (e.g. a workflow's id) gives a rule."""
    _field_providers[name] = provider


def namespace_fields(name: str, *, org, ref: int, event_types: list[dict]) -> list[dict]:
    """The fields ``name``'s provider lists for ``ref`` (none when no app provides them)."""
    provider = _field_providers.get(name)
    return provider(org=org, ref=ref, event_types=event_types) if provider else []
