"""Email addresses as the product stores them: syntax-checked, stripped and lower-cased."""

from functools import lru_cache

from django.core.exceptions import ValidationError
from email_validator import EmailNotValidError, validate_email


# ~100 µs per address: ingestion sees the same people over and over, so remember the answers.
@lru_cache(maxsize=65536)
def normalise_email(value: str) -> str:
    """Returns the stored form of an address, or raises ValidationError saying why it is invalid.

    No DNS lookups: deliverability is judged by bounces, not at request time.
    """
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(str(exc), code="invalid") from exc
    return info.normalized.lower()
