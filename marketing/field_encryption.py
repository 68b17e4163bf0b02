"""Personal fields encrypted at rest, and keyed blind indexes for the lookups that need them.

What is encrypted: a contact's phone, a phone number a message goes to (SMS ``Message.to``),
the network addresses in consent proofs and the values of sensitive custom properties
(docs/encryption.md). The ORM stays transparent: a model field encrypts in ``get_prep_value``
and decrypts in ``from_db_value``, so ``save``, ``bulk_create``, ``bulk_update`` and reads need
no care; ``marketing.bulk_sql``'s raw inserts and updates call ``bulk_prepare`` for the same.

- Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, ``cryptography``) under the keys of
  ``FIELD_ENCRYPTION_KEYS`` (comma-separated): the first encrypts, every one decrypts. A stored
  value reads ``enc1:<key id>:<token>``; the key id (8 hex of a hash of the key) says which key
  wrote it, so ``rotate_field_keys`` finds what is left under older keys, and a plain value
  (written before encryption, or an empty one) reads back as it is.
- A blind index is HMAC-SHA256 under ``FIELD_INDEX_KEY`` (never rotated: every index would have
  to be recomputed from the plaintext), over a purpose label and the value, so equal values
  match without the database seeing them. ``Contact.phone_bidx`` is indexed without the org:
  an SMS reply names only a number, for every org at once.
"""

import functools
import hashlib
import hmac
import json
import re
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models

PREFIX = "enc1:"
KEY_ID_LENGTH = 8
E164 = re.compile(r"^\+[1-9]\d{5,14}$")


class FieldDecryptionError(Exception):
    """A stored value that no configured key opens (a key removed before rotating, or damage)."""


# --- keys ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> tuple[MultiFernet, dict[str, Fernet], str]:
    """The keys of ``FIELD_ENCRYPTION_KEYS`` as (all of them, each by its id, the first's id)."""
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one key (see docs/encryption.md).")
    fernets, by_id = [], {}
    for position, key in enumerate(keys, start=1):
        try:
            fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python manage.py rotate_field_keys --new-key`)."
            ) from exc
        fernets.append(fernet)
        by_id[key_id(key)] = fernet
    return MultiFernet(fernets), by_id, key_id(keys[0])


def key_id(key: str) -> str:
    """A short public name of a key: 8 hex of SHA-256 over a label and the key."""
    return hashlib.sha256(b"field-encryption-key:" + key.encode()).hexdigest()[:KEY_ID_LENGTH]


def encryption_keys() -> tuple[str, ...]:
    """The configured keys, first (the one that encrypts) first."""
    keys = settings.FIELD_ENCRYPTION_KEYS
    if isinstance(keys, str):
        keys = keys.split(",")
    return tuple(k.strip() for k in keys if k and k.strip())


def current_key_id() -> str:
    """The id of the key new values are encrypted under."""
    return _keyring(encryption_keys())[2]


def keys_check() -> list[str]:
    """The ids of the configured keys (first = current); raises ImproperlyConfigured, naming the
    key by its position, when one is not a Fernet key."""
    keys = encryption_keys()
    _keyring(keys)
    return [key_id(k) for k in keys]


def new_key() -> str:
    """A fresh random key, as ``FIELD_ENCRYPTION_KEYS`` takes it."""
    return Fernet.generate_key().decode()


@functools.lru_cache(maxsize=4)
def _index_key(key: str) -> bytes:
    if not key:
        raise ImproperlyConfigured("FIELD_INDEX_KEY is empty: set it (see docs/encryption.md).")
    return key.encode()


# --- values -------------------------------------------------------------------------------------


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(text: str) -> str:
    """``text`` encrypted under the current key, as stored: ``enc1:<key id>:<token>``."""
    _, by_id, current = _keyring(encryption_keys())
    return f"{PREFIX}{current}:{by_id[current].encrypt(text.encode()).decode()}"


def decrypt(value: str) -> str:
    """The plaintext of a stored value; a value that is not encrypted comes back as it is."""
    if not is_encrypted(value):
        return value
    multi, by_id, _ = _keyring(encryption_keys())
    kid, _, token = value[len(PREFIX) :].partition(":")
    fernet = by_id.get(kid, multi)  # an unknown id: try every key (a key re-added under another id)
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise FieldDecryptionError(
            f"a value encrypted under key {kid} opens with none of FIELD_ENCRYPTION_KEYS "
            "(was a key removed before rotate_field_keys finished?)"
        ) from exc


def reencrypt(value: str) -> str:
    """``value`` under the current key (unchanged when it is already, or empty)."""
    if value in (None, ""):
        return value
    if is_encrypted(value) and value[len(PREFIX) : len(PREFIX) + KEY_ID_LENGTH] == current_key_id():
        return value
    return encrypt(decrypt(value))


def blind_index(value: str, *, purpose: str = "phone") -> str:
    """HMAC-SHA256 (hex) of ``value`` under ``FIELD_INDEX_KEY``, for exact-match lookups;
    ``purpose`` separates the indexes of different kinds of value. Empty for an empty value."""
    if value in (None, ""):
        return ""
    key = _index_key(settings.FIELD_INDEX_KEY)
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def phone_index(phone: str) -> str:
    """The blind index of an E.164 phone number (``Contact.phone_bidx``; SMS suppressions)."""
    return blind_index(phone, purpose="phone")


def is_phone(address: str) -> bool:
    """Whether an address is a phone number in E.164 (what SMS messages go to)."""
    return bool(address) and bool(E164.match(address))


# --- model fields -------------------------------------------------------------------------------


class EncryptedTextField(models.TextField):
    """Text stored encrypted (empty stays empty, so "is set" needs no key); reads decrypt.

    ``only_phones``: encrypt only values that are E.164 phone numbers (``Message.to``: an SMS
    goes to one; an email address, a push subscription or a destination slug stays readable).
    ``index``: the name of a ``BlindIndexField`` kept in step on every write.
    Only ``isnull`` and ``= ''`` can be asked of the column; other lookups raise, naming the
    index to use instead (a ciphertext never equals another).
    """

    encrypted = True

    def __init__(self, *args, only_phones: bool = False, index: str | None = None, **kwargs):
        self.only_phones, self.index = only_phones, index
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.only_phones:
            kwargs["only_phones"] = True
        if self.index:
            kwargs["index"] = self.index
        return name, path, args, kwargs

    def formfield(self, **kwargs):
        # A one-line input (a TextField's would be a textarea), as long as the plain value may be.
        return models.Field.formfield(self, **{"max_length": self.max_length, **kwargs})

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if is_encrypted(value) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, "") or is_encrypted(value):
            return value
        if self.only_phones and not is_phone(value):
            return value
        return encrypt(value)

    def get_lookup(self, lookup_name):
        # ``only_phones``: the other values are in clear and may be searched (a part of a phone
        # number then simply matches no encrypted one).
        if lookup_name in ("isnull", "exact", "in") or self.only_phones:
            return super().get_lookup(lookup_name)
        return None  # Django then says the lookup is unsupported for this field, naming it


class EncryptedExact(models.lookups.Exact):
    """``= ''`` and ``= NULL`` only: a ciphertext is different each time it is written."""

    def get_prep_lookup(self):
        field = self.lhs.output_field
        if field.only_phones and not (isinstance(self.rhs, str) and is_phone(self.rhs)):
            return super().get_prep_lookup()  # a value kept in clear
        if self.rhs not in (None, "") and not hasattr(self.rhs, "resolve_expression"):
            index = self.lhs.output_field.index
            raise FieldError(
                f"{self.lhs.output_field.name} is encrypted: look it up through "
                f"{index or 'its blind index'} (marketing.field_encryption.blind_index) instead."
            )
        return super().get_prep_lookup()


class EncryptedIn(models.lookups.In):
    def get_prep_lookup(self):
        clear = (lambda v: not is_phone(v)) if self.lhs.output_field.only_phones else (lambda v: v in (None, ""))
        if not hasattr(self.rhs, "resolve_expression") and not all(clear(v) for v in self.rhs):
            raise FieldError(f"{self.lhs.output_field.name} is encrypted: look it up through its blind index.")
        return super().get_prep_lookup()


EncryptedTextField.register_lookup(EncryptedExact)
EncryptedTextField.register_lookup(EncryptedIn)


class BlindIndexField(models.CharField):
    """The keyed hash of another field (``source``), computed whenever the row is written."""

    def __init__(self, *args, source: str, purpose: str = "phone", **kwargs):
        self.source, self.purpose = source, purpose
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", "")
        # A DEFAULT in the table too: raw INSERTs that name no index (the benches' generated
        # contacts) store "" (no phone), which rotate_field_keys or contacts_phones_encrypt fill.
        kwargs.setdefault("db_default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        if self.purpose != "phone":
            kwargs["purpose"] = self.purpose
        for default, value in (("max_length", 64), ("blank", True), ("editable", False), ("default", "")):
            if kwargs.get(default) == value:
                kwargs.pop(default)
        return name, path, args, kwargs

    def value_for(self, source_value: str | None) -> str:
        if not source_value:
            return ""
        return blind_index(decrypt(source_value), purpose=self.purpose)

    def pre_save(self, model_instance, add):
        value = self.value_for(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value


class EncryptedNetworkAddressesJSONField(models.JSONField):
    """JSON whose network addresses (keys ``ip``, ``ip_address``, ``client_ip``, ``remote_addr``,
    ``x_forwarded_for``, and ``from``: an SMS sender's number; at any depth) are stored
    encrypted; reads give them back decrypted. For consent proofs: who may see the proof sees
    the address, the database (and its backups) does not."""

    encrypted = True
    KEYS = frozenset({"ip", "ip_address", "client_ip", "remote_addr", "x_forwarded_for", "from"})

    def get_prep_value(self, value):
        return super().get_prep_value(_walk(value, self._encrypt_item))

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        return _walk(value, self._decrypt_item)

    def _encrypt_item(self, key, item):
        if key in self.KEYS and isinstance(item, str) and item and not is_encrypted(item):
            return encrypt(item)
        return item

    def _decrypt_item(self, key, item):
        return decrypt(item) if key in self.KEYS and is_encrypted(item) else item


def _walk(value, change):
    """``value`` with ``change(key, item)`` applied to every plain item under a dict key."""
    if isinstance(value, dict):
        return {k: _walk(v, change) if isinstance(v, dict | list) else change(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


# --- the raw-SQL paths (marketing.bulk_sql) -----------------------------------------------------


def encrypted_fields(model) -> list[models.Field]:
    """The model's fields that write through Python (encryption) or derive from one (indexes)."""
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False) or isinstance(f, BlindIndexField)]


def bulk_prepare(model, columns: dict[str, list]) -> dict[str, list]:
    """``columns`` (field name → values) as ``bulk_sql`` writes them: encrypted values
    encrypted, and each blind index whose source is written computed and added."""
    fields = encrypted_fields(model)
    if not fields:
        return columns
    prepared = dict(columns)
    meta = model._meta
    for field in fields:
        if isinstance(field, BlindIndexField):
            source = meta.get_field(field.source)
            values = columns.get(source.name, columns.get(source.attname))
            if values is not None:
                prepared[field.attname] = [field.value_for(v) for v in values]
            continue
        for name in {field.name, field.attname}:
            if name in prepared:
                prepared[name] = [field.get_prep_value(v) for v in prepared[name]]
    return prepared


def with_indexes(model, fields) -> list[str]:
    """``fields`` (names being written) plus the blind indexes derived from any of them, so
    ``save(update_fields=["phone"])`` and ``bulk_update(…, ["phone"])`` keep the index in step."""
    fields = list(fields)
    for field in model._meta.concrete_fields:
        if isinstance(field, BlindIndexField) and field.source in fields and field.name not in fields:
            fields.append(field.name)
    return fields


class EncryptedQuerySet(models.QuerySet):
    """A queryset whose ``bulk_update`` recomputes the blind indexes of the fields it writes
    (``bulk_create`` and ``save`` call ``BlindIndexField.pre_save`` themselves)."""

    def bulk_update(self, objs, fields, batch_size=None):
        fields = with_indexes(self.model, fields)
        indexes = [f for f in self.model._meta.concrete_fields if isinstance(f, BlindIndexField) and f.name in fields]
        for obj in objs:
            for index in indexes:
                index.pre_save(obj, False)
        return super().bulk_update(objs, fields, batch_size=batch_size)


EncryptedManager = models.Manager.from_queryset(EncryptedQuerySet)


# --- sensitive custom properties ----------------------------------------------------------------

ENC, BIDX = "$enc", "$bidx"  # a sensitive value as stored: {"$enc": ciphertext, "$bidx": its index}
SENSITIVE_TTL = 10.0  # seconds another process may take to see a property newly marked sensitive
_sensitive: dict[int, tuple[float, frozenset[str]]] = {}


def sensitive_keys(org_id: int | None) -> frozenset[str]:
    """The keys of the org's contact properties marked sensitive (cached for a few seconds;
    saving a definition clears this process's cache at once).

    Read in the org's own context on the default connection (which also sees a definition its
    open transaction changed); from anywhere else through the system alias, since row-level
    security shows the app role no definition of another org, and an empty answer cached here
    would store that org's sensitive values in clear."""
    if org_id is None:
        return frozenset()
    now = time.monotonic()
    cached = _sensitive.get(org_id)
    if cached and cached[0] > now:
        return cached[1]
    from marketing.database_roles import system_alias
    from marketing.models import PropertyDefinition
    from marketing.tenancy import current_org

    definitions = PropertyDefinition.objects.with_scopes_disabled()
    current = current_org()
    if current is None or current.pk != org_id:
        definitions = definitions.using(system_alias())
    keys = frozenset(
        definitions.filter(org_id=org_id, subject=PropertyDefinition.Subject.CONTACT, sensitive=True).values_list(
            "key", flat=True
        )
    )
    _sensitive[org_id] = (now + SENSITIVE_TTL, keys)
    return keys


def sensitive_keys_forget(org_id: int | None = None) -> None:
    """Drops the cached sensitive keys (of one org, or all)."""
    if org_id is None:
        _sensitive.clear()
    else:
        _sensitive.pop(org_id, None)


def property_index(key: str, value: Any) -> str:
    """The blind index of a sensitive property's value (its JSON text), per property key."""
    return blind_index(json.dumps(value, sort_keys=True), purpose=f"property:{key}")


def _sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {ENC, BIDX}


def properties_seal(properties: Any, keys: frozenset[str]) -> Any:
    """``properties`` with the values of ``keys`` encrypted (empty ones stay as they are)."""
    if not isinstance(properties, dict) or not keys:
        return properties
    sealed = dict(properties)
    for key in keys & properties.keys():
        value = properties[key]
        if value in (None, "") or _sealed(value):
            continue
        sealed[key] = {ENC: encrypt(json.dumps(value)), BIDX: property_index(key, value)}
    return sealed


def properties_open(properties: Any) -> Any:
    """``properties`` with every encrypted value decrypted (whatever the definitions say now)."""
    if not isinstance(properties, dict) or not any(_sealed(v) for v in properties.values()):
        return properties
    return {k: json.loads(decrypt(v[ENC])) if _sealed(v) else v for k, v in properties.items()}


class SealedProperties(dict):
    """Properties already sealed for their row's org (``pre_save``, a re-seal): written as they are."""


class SensitivePropertiesField(models.JSONField):
    """A contact's custom properties: the values of properties marked sensitive (for the row's
    org) are stored as ``{"$enc": ciphertext, "$bidx": blind index}``; reads decrypt them, so
    code and rules see plain values. ``save`` and ``bulk_create`` seal for the row's org; other
    writes (``bulk_update``, ``update``) for the current org (``marketing.tenancy``)."""

    encrypted = True

    def pre_save(self, model_instance, add):
        value = getattr(model_instance, self.attname)
        return SealedProperties(properties_seal(value, sensitive_keys(model_instance.org_id))) if value else value

    def get_prep_value(self, value):
        if not isinstance(value, SealedProperties) and isinstance(value, dict) and value:
            from marketing.tenancy import current_org

            org = current_org()
            value = properties_seal(value, sensitive_keys(org.pk if org else None))
        return super().get_prep_value(dict(value) if isinstance(value, SealedProperties) else value)

    def from_db_value(self, value, expression, connection):
        return properties_open(super().from_db_value(value, expression, connection))
