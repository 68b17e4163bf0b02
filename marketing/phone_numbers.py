"""Phone numbers as the product stores them: E.164 (+4915112345678)."""

import phonenumbers
from django.core.exceptions import ValidationError


def normalise_phone(value: str, *, default_country: str | None = None) -> str:
    """Parses a number (national numbers in the default country) and returns it in E.164."""
    try:
        number = phonenumbers.parse(value, default_country or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            message = f"“{value}” needs its country code, e.g. +49 151 12345678."
        else:
            message = f"“{value}” is not a phone number."
        raise ValidationError(message, code="invalid") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"“{value}” is not a valid phone number.", code="invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
