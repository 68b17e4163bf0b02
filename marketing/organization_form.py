"""The organisation page's form: frequency caps as "at most N a day / a week" per channel, quiet
hours as two times, the default time zone from a list, and the allowed web origins one a line.

``frequency_caps`` is stored as ``{"email": {"day": 2, "week": 5}, …}`` and read by the outbox's
guards (``channels_app.outbox``): a marketing message over a cap is held until the window ends. A
channel or period the form does not show is kept as it is.
"""

import zoneinfo

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
)

from marketing.models import ORIGIN, Organization

CAP_CHANNELS = (("email", "Email"), ("sms", "SMS"), ("push", "Web push"))
CAP_PERIODS = (("day", "a day"), ("week", "a week"))
TIME_CLASSES = " ".join([*INPUT_CLASSES, "max-w-40"])


def cap_field_name(channel: str, period: str) -> str:
    return f"cap_{channel}_{period}"


def time_zone_choices() -> list[tuple[str, str]]:
    return [(zone, zone.replace("_", " ")) for zone in sorted(zoneinfo.available_timezones())]


class OriginsField(forms.CharField):
    """Web origins, one a line; each bad line is named in the error."""

    widget = UnfoldAdminTextareaWidget(attrs={"rows": 3, "spellcheck": "false"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        lines = [line.strip() for line in text.splitlines()]
        errors = [
            f"Line {number}: “{line}” is not a web origin. Write the scheme and host only, "
            "e.g. https://www.acme.io (no path)."
            for number, line in enumerate(lines, start=1)
            if line and not ORIGIN.match(line)
        ]
        if errors:
            raise ValidationError(errors)
        origins = []
        for line in lines:
            origin = line.rstrip("/").lower()
            if origin and origin not in origins:
                origins.append(origin)
        return origins


class OrganizationForm(forms.ModelForm):
    default_time_zone = forms.ChoiceField(
        label="Default time zone",
        widget=UnfoldAdminSelectWidget,
        help_text="For contacts without a time zone of their own: quiet hours and “at 9:00 local” delays use it.",
    )
    allowed_origins = OriginsField(
        required=False,
        label="Websites allowed to send tracking and forms",
        help_text="One web address a line, scheme and host only, e.g. https://www.acme.io. "
        "Browsers on these sites may call the tracking and form endpoints.",
    )

    class Meta:
        model = Organization
        fields = (
            "name",
            "slug",
            "postal_address",
            "default_time_zone",
            "default_country",
            "from_name",
            "from_email",
            "quiet_hours_start",
            "quiet_hours_end",
            "allowed_origins",
        )
        widgets = {
            "quiet_hours_start": forms.TimeInput(attrs={"type": "time", "class": TIME_CLASSES}, format="%H:%M"),
            "quiet_hours_end": forms.TimeInput(attrs={"type": "time", "class": TIME_CLASSES}, format="%H:%M"),
        }
        labels = {"quiet_hours_start": "Quiet hours from", "quiet_hours_end": "until"}
        help_texts = {
            "quiet_hours_start": "Marketing messages due in quiet hours wait until they end, in each contact's "
            "own time zone (else the default time zone above), e.g. from 21:00 until 08:00. "
            "Leave both empty for none (text messages still keep 21:00–08:00).",
            "quiet_hours_end": "When messages may go out again.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_time_zone"].choices = time_zone_choices()
        caps = self.instance.frequency_caps if isinstance(self.instance.frequency_caps, dict) else {}
        for channel, _ in CAP_CHANNELS:
            channel_caps = caps.get(channel) if isinstance(caps.get(channel), dict) else {}
            for period, _ in CAP_PERIODS:
                value = channel_caps.get(period)
                if isinstance(value, int) and not isinstance(value, bool):
                    self.initial[cap_field_name(channel, period)] = value

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("quiet_hours_start"), cleaned.get("quiet_hours_end")
        if (start is None) != (end is None) and "quiet_hours_start" not in self.errors:
            missing = "quiet_hours_end" if end is None else "quiet_hours_start"
            self.add_error(missing, "Quiet hours need both a start and an end (or neither).")
        elif start is not None and start == end:
            self.add_error("quiet_hours_end", "The end must differ from the start.")
        caps = self.instance.frequency_caps if isinstance(self.instance.frequency_caps, dict) else {}
        caps = {channel: dict(value) if isinstance(value, dict) else value for channel, value in caps.items()}
        for channel, _ in CAP_CHANNELS:
            channel_caps = caps.get(channel) if isinstance(caps.get(channel), dict) else {}
            for period, _ in CAP_PERIODS:
                name = cap_field_name(channel, period)
                if name in self.errors or name not in cleaned:
                    continue
                if cleaned[name] is None:
                    channel_caps.pop(period, None)
                else:
                    channel_caps[period] = cleaned[name]
            if channel_caps:
                caps[channel] = channel_caps
            else:
                caps.pop(channel, None)
        self.instance.frequency_caps = caps
        return cleaned


def _cap_field(channel_label: str, period: str, period_label: str) -> forms.IntegerField:
    return forms.IntegerField(
        required=False,
        min_value=1,
        label=f"{channel_label}: at most" if period == "day" else "and at most",
        help_text=f"{channel_label} marketing messages per contact {period_label}. Empty: no limit.",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"placeholder": "no limit", "step": 1}),
        error_messages={"min_value": "At least 1; leave it empty for no limit."},
    )


# Declared on the class (not in __init__) so that the admin's fieldsets may name them.
for _channel, _channel_label in CAP_CHANNELS:
    for _period, _period_label in CAP_PERIODS:
        OrganizationForm.declared_fields[cap_field_name(_channel, _period)] = OrganizationForm.base_fields[
            cap_field_name(_channel, _period)
        ] = _cap_field(_channel_label, _period, _period_label)


def organization_fieldsets() -> tuple:
    """The organisation page's sections, caps a line per channel."""
    cap_lines = tuple(
        tuple(cap_field_name(channel, period) for period, _ in CAP_PERIODS) for channel, _ in CAP_CHANNELS
    )
    return (
        (None, {"fields": ("name", "slug", "postal_address")}),
        ("Defaults", {"fields": ("default_time_zone", "default_country", "from_name", "from_email")}),
        (
            "Sending limits",
            {
                "fields": (*cap_lines, ("quiet_hours_start", "quiet_hours_end")),
                "description": "Limits for marketing messages; transactional ones (a password reset, a receipt) "
                "are never held. A message over a limit waits until it may go.",
            },
        ),
        ("Tracking", {"fields": ("allowed_origins",)}),
    )
