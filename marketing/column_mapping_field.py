"""An import's column mapping typed as lines ("E-mail = email") instead of JSON: each line a CSV
column, an equals sign and the field it fills. JSON text (``{"E-mail": "email"}``) is still read,
for whoever pastes a saved mapping."""

import json

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import UnfoldAdminTextareaWidget


class ColumnMappingField(forms.CharField):
    """A dict of CSV column → field, one ``column = field`` a line; each bad line is named."""

    widget = UnfoldAdminTextareaWidget(attrs={"rows": 5, "spellcheck": "false", "placeholder": "E-mail = email"})

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{column} = {field}" for column, field in value.items())
        return value

    def to_python(self, value):
        text = super().to_python(value).strip()
        if text.startswith("{"):
            try:
                mapping = json.loads(text)
            except ValueError as exc:
                raise ValidationError(f"Not valid JSON: {exc.msg}. Or write one “column = field” a line.") from exc
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise ValidationError("Write one “column = field” a line, e.g. “E-mail = email”.")
            return mapping
        mapping, errors = {}, []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            column, equals, field = line.rpartition("=")
            column, field = column.strip(), field.strip()
            if not equals or not column or not field:
                errors.append(f"Line {number}: write the CSV column, “=” and the field, e.g. “E-mail = email”.")
            elif column in mapping:
                errors.append(f"Line {number}: the column “{column}” is mapped twice.")
            else:
                mapping[column] = field
        if errors:
            raise ValidationError(errors)
        return mapping
