"""Custom properties as typed inputs on the contact and company pages, one per
``PropertyDefinition`` of the org: text, number, date and time, a checkbox, a pick-list, or one
item a line for a list. The values are written back into ``properties`` over the keys that have no
definition, which are kept as they are (and shown read-only under "Advanced").
"""

import json
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from marketing.models import PropertyDefinition
from marketing.properties import value_error

PREFIX = "prop__"
Type = PropertyDefinition.Type
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


def property_definitions(*, org, subject: str) -> list[PropertyDefinition]:
    """The org's definitions for ``subject`` (contact or company), by label."""
    if org is None:
        return []
    definitions = PropertyDefinition.objects.filter(org=org, subject=subject)
    return sorted(definitions, key=lambda d: (d.label or d.key).lower())


def property_field(definition: PropertyDefinition) -> forms.Field:
    """The input for one definition; its label is the definition's, its help says the key and type."""
    label = definition.label or definition.key
    help_text = f"Custom property “{definition.key}”"
    common = {"label": label, "required": False}
    if definition.type == Type.NUMBER:
        return forms.FloatField(
            **common,
            widget=UnfoldAdminDecimalFieldWidget(attrs={"step": "any"}),
            help_text=f"{help_text}: a number.",
            error_messages={"invalid": "Enter a number, e.g. 12 or 4.5."},
        )
    if definition.type == Type.BOOLEAN:
        return forms.BooleanField(**common, widget=UnfoldBooleanSwitchWidget, help_text=f"{help_text}: on for yes.")
    if definition.type == Type.DATETIME:
        return forms.DateTimeField(
            **common,
            input_formats=[DATETIME_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
            widget=forms.DateTimeInput(
                attrs={"type": "datetime-local", "class": " ".join(INPUT_CLASSES)}, format=DATETIME_INPUT
            ),
            help_text=f"{help_text}: a date and time ({timezone.get_current_timezone_name()}).",
            error_messages={"invalid": "Enter a date and time, e.g. 2026-12-01 09:30."},
        )
    if definition.type == Type.ENUM:
        options = [(str(option), str(option)) for option in definition.options or []]
        return forms.ChoiceField(
            **common,
            choices=[("", "—"), *options],
            widget=UnfoldAdminSelectWidget,
            help_text=f"{help_text}: one of the values set on its definition.",
        )
    if definition.type == Type.LIST:
        return forms.CharField(
            **common,
            widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
            help_text=f"{help_text}: one item a line.",
        )
    return forms.CharField(**common, widget=UnfoldAdminTextInputWidget, help_text=f"{help_text}: text.")


def input_value(definition: PropertyDefinition, value: Any) -> Any:
    """A stored value as its input shows it."""
    if value is None:
        return None
    if definition.type == Type.DATETIME and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment.astimezone(timezone.get_current_timezone()).replace(tzinfo=None) if moment.tzinfo else moment
    if definition.type == Type.LIST and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    if definition.type == Type.ENUM:
        return str(value)
    return value


def stored_value(definition: PropertyDefinition, cleaned: Any, before: Any) -> Any:
    """An input's cleaned value as stored (None: the key is left out). A value the input shows
    unchanged keeps its stored form (a datetime's exact text, an enum's number)."""
    if cleaned in (None, "") or (definition.type == Type.LIST and not str(cleaned).strip()):
        return None
    shown = cleaned
    if definition.type == Type.DATETIME and cleaned.tzinfo:
        shown = cleaned.astimezone(timezone.get_current_timezone()).replace(tzinfo=None)  # as input_value shows it
    if before is not None and input_value(definition, before) == shown:
        return before
    if definition.type == Type.NUMBER:
        return int(cleaned) if float(cleaned).is_integer() else cleaned
    if definition.type == Type.DATETIME:
        moment = cleaned if cleaned.tzinfo else cleaned.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if definition.type == Type.ENUM:
        return next((option for option in definition.options if str(option) == cleaned), cleaned)
    if definition.type == Type.LIST:
        return [line.strip() for line in str(cleaned).splitlines() if line.strip()]
    return cleaned


class PropertiesFormMixin:
    """A model form whose ``prop__<key>`` inputs are written into ``instance.properties``."""

    property_definitions: list[PropertyDefinition] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.properties if isinstance(self.instance.properties, dict) else {}
        for definition in self.property_definitions:
            if definition.key in stored:
                self.initial.setdefault(PREFIX + definition.key, input_value(definition, stored[definition.key]))

    def clean(self):
        cleaned = super().clean()
        stored = dict(self.instance.properties) if isinstance(self.instance.properties, dict) else {}
        for definition in self.property_definitions:
            name = PREFIX + definition.key
            if name in self.errors or name not in cleaned:
                continue
            if definition.type == Type.BOOLEAN and not cleaned[name] and definition.key not in stored:
                continue  # an unticked box for a property never set stays unset
            value = stored_value(definition, cleaned[name], stored.get(definition.key))
            if definition.type == Type.BOOLEAN:
                value = bool(cleaned[name])
            problem = value_error(definition.type, definition.options, value)
            if problem:
                self.add_error(name, f"This value does not fit the property: {problem}.")
            elif value is None:
                stored.pop(definition.key, None)
            else:
                stored[definition.key] = value
        self.instance.properties = stored
        return cleaned


def properties_form(base: type[forms.ModelForm], *, definitions: list[PropertyDefinition]) -> type:
    """``base`` with one input per definition (``prop__<key>``)."""
    attrs = {PREFIX + d.key: property_field(d) for d in definitions}
    attrs["property_definitions"] = definitions
    return type(f"{base.__name__}WithProperties", (PropertiesFormMixin, base), attrs)


def undefined_properties(properties: Any, definitions: list[PropertyDefinition]) -> dict:
    """The stored properties that no definition covers (kept as they are)."""
    if not isinstance(properties, dict):
        return {}
    defined = {d.key for d in definitions}
    return {key: value for key, value in properties.items() if key not in defined}


def properties_json(properties: dict) -> str:
    """Read-only JSON of properties, for the "Advanced" section."""
    if not properties:
        return format_html('<span class="help">{}</span>', "None: every property has a definition.")
    return format_html(
        "<pre style='white-space: pre-wrap; max-width: 60em'>{}</pre>",
        json.dumps(properties, indent=2, ensure_ascii=False, sort_keys=True),
    )


def properties_list(properties: Any, definitions: list[PropertyDefinition]) -> str:
    """Every stored property as "label: value", for a page shown read-only."""
    if not isinstance(properties, dict) or not properties:
        return "—"
    labels = {d.key: d.label or d.key for d in definitions}
    rows = sorted(((labels.get(key, key), value) for key, value in properties.items()), key=lambda r: r[0].lower())
    return format_html(
        "<dl class='property-list' style='display: grid; grid-template-columns: max-content 1fr; gap: 0.25em 1.5em'>"
        "{}</dl>",
        format_html_join(
            "", "<dt class='font-semibold'>{}</dt><dd>{}</dd>", ((label, _plain(value)) for label, value in rows)
        ),
    )


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class OptionsField(forms.CharField):
    """An enum's allowed values, one a line. A line that reads like a value already stored keeps
    that value as it was (a number stays a number)."""

    widget = UnfoldAdminTextareaWidget(attrs={"rows": 5})

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Options")
        kwargs.setdefault(
            "help_text",
            "For the type “One of a set”: the allowed values, one a line, in the order the pick-list shows them.",
        )
        super().__init__(*args, **kwargs)
        self.previous: list = []

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(option) for option in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        by_text = {str(option): option for option in self.previous}
        options = []
        for line in text.splitlines():
            line = line.strip()
            option = by_text.get(line, line)
            if line and option not in options:
                options.append(option)
        return options


class PropertyDefinitionForm(forms.ModelForm):
    options = OptionsField()

    class Meta:
        model = PropertyDefinition
        fields = ("subject", "key", "label", "type", "options", "source", "sensitive")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "options" in self.fields:
            self.fields["options"].previous = list(self.instance.options or [])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("type") == PropertyDefinition.Type.ENUM and not cleaned.get("options"):
            self.add_error("options", "A “One of a set” property needs at least one option, one a line.")
        elif cleaned.get("type") not in (None, PropertyDefinition.Type.ENUM) and cleaned.get("options"):
            self.add_error("options", "Only a “One of a set” property has options: empty this box or change the type.")
        return cleaned
