"""The ground floor: tenants, people who use the console, and the contacts they market to."""

import functools
import re
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_scopes import ScopedManager

from marketing.append_only import AppendOnly
from marketing.change_history import history_tracked
from marketing.email_addresses import normalise_email
from marketing.field_encryption import (
    BlindIndexField,
    EncryptedManager,
    EncryptedTextField,
    SensitivePropertiesField,
    sensitive_keys_forget,
    with_indexes,
)
from marketing.phone_numbers import normalise_phone

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/?$")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())  # scans tzdata: ~5 ms, so once per process


def validate_time_zone(value: str) -> None:
    if value and value not in _time_zones():
        raise ValidationError(f"“{value}” is not an IANA time zone, e.g. Europe/Berlin.")


def validate_country(value: str) -> None:
    if value and not (len(value) == 2 and value.isalpha() and value.isupper()):
        raise ValidationError("Use a two-letter ISO 3166 country code in capitals, e.g. DE.")


def _taken(model, instance, **values) -> bool:
    """Whether another row of the instance's org already has these values (per-field errors
    for the unique (org, …) constraints, which Django would report as form-wide errors)."""
    others = model.objects.with_scopes_disabled().filter(org_id=instance.org_id, **values)
    return others.exclude(pk=instance.pk).exists() if instance.pk else others.exists()


class User(AbstractUser):
    """A person who uses the console or the API. Joins organisations through Membership."""

    class Meta:
        db_table = "marketing_user"


@history_tracked()
class Organization(models.Model):
    """The tenant. Every tenant-owned row points here through ``org``."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    postal_address = models.TextField(
        blank=True, help_text="Printed in every marketing email, as anti-spam laws require."
    )
    default_time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    default_country = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_country],
        help_text="Used to read phone numbers written without a country code.",
    )
    from_name = models.CharField(max_length=200, blank=True)
    from_email = models.EmailField(blank=True)
    frequency_caps = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per channel, e.g. {"email": {"day": 2, "week": 5}, "sms": {"day": 1}}.',
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="In the contact's time zone.")
    quiet_hours_end = models.TimeField(null=True, blank=True)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Web origins allowed to call the tracking and form endpoints from a browser, "
        'e.g. ["https://www.acme.io"].',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "organisation"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        origins = self.allowed_origins
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise ValidationError({"allowed_origins": 'A list of origins, e.g. ["https://www.acme.io"].'})
        bad = [o for o in origins if not ORIGIN.match(o.strip())]
        if bad:
            raise ValidationError({"allowed_origins": f"Not an origin (scheme://host[:port], no path): {bad[0]}"})
        self.allowed_origins = [o.strip().rstrip("/").lower() for o in origins]


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MARKETER = "marketer", "Marketer"
    SALES = "sales", "Sales"
    ANALYST = "analyst", "Analyst"
    COMPLIANCE = "compliance", "Compliance"


class TenantModel(models.Model):
    """Base for every tenant-owned model: an indexed ``org`` and a manager scoped to it."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    # Queries see only the active org's rows (marketing.tenancy.org_context); outside any
    # org context they raise instead of leaking every tenant's rows.
    objects = ScopedManager(org="org")

    class Meta:
        abstract = True


@history_tracked()
class Membership(TenantModel):
    """A user's role in one organisation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MARKETER)
    sales_manager = models.BooleanField(
        default=False,
        help_text="Sees every rep's handoffs in this organisation and reassigns them (admins always do).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()}"


class Invitation(TenantModel):
    """An invitation to join the org by email with a role (``marketing.invitations``): pending
    until the person follows the signed link and accepts, or until revoked or expired."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MARKETER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now, help_text="When the newest email was sent.")
    sends = models.PositiveIntegerField(default=1, help_text="Emails sent: the first and each resend.")
    expires_at = models.DateTimeField(help_text="The newest link stops working then.")
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When it was accepted, revoked or found expired.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "email"], condition=Q(status="pending"), name="invitation_one_pending_per_email"
            )
        ]
        indexes = [models.Index(fields=["org", "sent_at"], name="invitation_org_sent")]

    def __str__(self) -> str:
        return f"{self.email} as {self.get_role_display()}"


@history_tracked(exclude=("secret_hash", "last_used_at"))
class ApiKey(TenantModel):
    """An API key: ``mk_<prefix>_<secret>``; only the prefix and SHA-256 of the secret are kept."""

    class Scope(models.TextChoices):
        SERVER = "server", "Server (full API)"
        WRITE = "write", "Write (tracking and forms only; safe to embed in a web page)"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True)
    secret_hash = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.SERVER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (mk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Company(TenantModel):
    """An account: the organisation a contact works for."""

    name = models.CharField(max_length=200)
    # NULL, not "", for "no domain": unique (org, domain) must allow many companies without one.
    domain = models.CharField(max_length=253, null=True, blank=True, help_text="e.g. acme.io")  # noqa: DJ001
    industry = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True, help_text="Number of employees.")
    revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True, help_text="Annual revenue.")
    properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "domain"], name="company_unique_domain")]
        indexes = [
            models.Index(fields=["org", "name"]),
            models.Index(fields=["org", "industry"]),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.domain:
            self.domain = self.domain.strip().lower().removeprefix("https://").removeprefix("http://")
            self.domain = self.domain.removeprefix("www.").split("/")[0] or None
        else:
            self.domain = None
        if self.domain and self.org_id and _taken(Company, self, domain=self.domain):
            raise ValidationError({"domain": "A company with this domain already exists."})


class Tag(TenantModel):
    """A free label on contacts ("vip", "webinar-2026")."""

    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="tag_unique_name")]

    def __str__(self) -> str:
        return self.name


class ContactList(TenantModel):
    """A static list that contacts are added to and removed from by hand, import or workflow."""

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "list"
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="contactlist_unique_slug")]

    def __str__(self) -> str:
        return self.name


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", "Subscriber"
    LEAD = "lead", "Lead"
    MQL = "mql", "Marketing qualified lead"
    SQL = "sql", "Sales qualified lead"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"
    EVANGELIST = "evangelist", "Evangelist"
    OTHER = "other", "Other"


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    CONNECTED = "connected", "Connected"
    QUALIFIED = "qualified", "Qualified"
    UNQUALIFIED = "unqualified", "Unqualified"
    BAD_TIMING = "bad_timing", "Bad timing"


class Contact(TenantModel):
    """A person the organisation markets to. Email is stored normalised and is unique per org."""

    # A CharField: clean() validates with email-validator, whose messages say what is wrong.
    # NULL for "no email" (anonymous visitors), so unique (org, email) allows many of them.
    email = models.CharField(max_length=254, null=True, blank=True)  # noqa: DJ001
    external_id = models.CharField(  # noqa: DJ001
        max_length=200, null=True, blank=True, help_text="Your system's id for this person (Segment's userId)."
    )
    # Encrypted at rest; ``phone_bidx`` (its keyed hash) is how rows are found by phone.
    phone = EncryptedTextField(
        max_length=20,
        blank=True,
        index="phone_bidx",
        help_text="E.164, e.g. +4915112345678. Stored encrypted; searching finds exact numbers only.",
    )
    phone_bidx = BlindIndexField(source="phone")
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts")
    job_title = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, validators=[validate_country])
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    locale = models.CharField(max_length=16, blank=True, help_text="e.g. de or pt-BR.")
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.LEAD)
    lead_status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_contacts"
    )
    score = models.IntegerField(default=0, help_text="The default scoring model's score; written by scoring only.")
    properties = SensitivePropertiesField(default=dict, blank=True)  # sensitive ones encrypted at rest
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    lists = models.ManyToManyField(ContactList, blank=True, through="ListMembership", related_name="contacts")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(EncryptedManager, org="org")  # bulk_update keeps phone_bidx in step

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "email"], name="contact_unique_email"),
            models.UniqueConstraint(fields=["org", "external_id"], name="contact_unique_external_id"),
        ]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="contact_org_created"),
            models.Index(fields=["org", "lifecycle_stage"], name="contact_org_stage"),
            models.Index(fields=["org", "lead_status"], name="contact_org_status"),
            models.Index(fields=["org", "country"], name="contact_org_country"),
            # An SMS reply (STOP, START, text) names only the phone, for every org at once.
            models.Index(fields=["phone_bidx"], name="contact_phone_bidx", condition=~Q(phone_bidx="")),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        if name and self.email:
            return f"{name} <{self.email}>"
        return name or self.email or f"Contact #{self.pk}"

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields") is not None:  # the phone's index is written with it
            kwargs["update_fields"] = with_indexes(Contact, kwargs["update_fields"])
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Normalises email and phone; errors are per field."""
        errors = {}
        if self.email:
            try:
                self.email = normalise_email(self.email)
            except ValidationError as exc:
                errors["email"] = exc.messages
        else:
            self.email = None
        if self.phone:
            default_country = self.org.default_country if self.org_id else None
            try:
                self.phone = normalise_phone(self.phone, default_country=default_country)
            except ValidationError as exc:
                errors["phone"] = exc.messages
        if self.email and "email" not in errors and self.org_id and _taken(Contact, self, email=self.email):
            errors["email"] = ["A contact with this email already exists."]
        if self.company_id and self.org_id and self.company.org_id != self.org_id:
            errors["company"] = ["Select a company of this organisation."]
        if errors:
            raise ValidationError(errors)


class ListMembership(models.Model):
    """A contact's place on a static list, with when it was added."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact_list", "contact"], name="listmembership_unique")]

    def __str__(self) -> str:
        return f"{self.contact} on {self.contact_list}"


class AnonymousId(TenantModel):
    """A browser's or device's anonymous id, tied to the contact it has been resolved to."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="anonymous_ids")
    value = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "anonymous id"
        constraints = [models.UniqueConstraint(fields=["org", "value"], name="anonymousid_unique_value")]

    def __str__(self) -> str:
        return self.value


@history_tracked()
class PropertyDefinition(TenantModel):
    """The type of a custom property of contacts, companies or events; values are checked against it."""

    class Subject(models.TextChoices):
        CONTACT = "contact", "Contact"
        COMPANY = "company", "Company"
        EVENT = "event", "Event"

    class Type(models.TextChoices):
        STRING = "string", "Text"
        NUMBER = "number", "Number"
        BOOLEAN = "boolean", "Yes/no"
        DATETIME = "datetime", "Date and time"
        ENUM = "enum", "One of a set"
        LIST = "list", "List"

    class Source(models.TextChoices):
        USER = "user", "Defined by a user"
        AUTO = "auto", "Inferred from data"

    subject = models.CharField(max_length=10, choices=Subject.choices)
    key = models.CharField(max_length=100)
    label = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=10, choices=Type.choices)
    options = models.JSONField(default=list, blank=True, help_text="The allowed values of an enum.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.USER)
    sensitive = models.BooleanField(
        default=False,
        help_text="Contact properties only, text or one of a set. Values are stored encrypted; rules can only ask "
        "whether it is set, whether it is empty, or whether it equals a value.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "key"]
        constraints = [models.UniqueConstraint(fields=["org", "subject", "key"], name="propertydefinition_unique_key")]

    def __str__(self) -> str:
        return f"{self.subject}.properties.{self.key} ({self.type})"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        sensitive_keys_forget(self.org_id)  # this process encrypts a newly sensitive key at once

    def clean(self) -> None:
        if self.sensitive and self.subject != self.Subject.CONTACT:
            raise ValidationError({"sensitive": "Only a contact property can be sensitive."})
        if self.sensitive and self.type not in (self.Type.STRING, self.Type.ENUM):
            raise ValidationError({"sensitive": "Only a text or “one of a set” property can be sensitive."})


class Event(TenantModel):
    """Something a contact did or that happened to them; stored once per (org, message_id)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=100)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, default="api")
    message_id = models.CharField(max_length=200)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["org", "message_id"], name="event_unique_message_id")]
        indexes = [
            models.Index(fields=["org", "type", "-occurred_at"], name="event_org_type_time"),
            models.Index(fields=["org", "contact", "type", "occurred_at"], name="event_org_contact_type_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ContactMerge(TenantModel):
    """One contact folded into another (identity resolution), with what each side had."""

    kept = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="merges")
    merged_contact_id = models.BigIntegerField(help_text="The id the merged contact had.")
    merged_snapshot = models.JSONField(help_text="The merged contact's fields, as they were.")
    conflicts = models.JSONField(
        default=dict, blank=True, help_text='Per field: {"kept": …, "merged": …, "chosen": …}.'
    )
    moved = models.JSONField(default=dict, blank=True, help_text="How many rows of each kind moved.")
    reason = models.CharField(max_length=40)
    merged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-merged_at"]
        indexes = [models.Index(fields=["org", "kept"], name="contactmerge_org_kept")]

    def __str__(self) -> str:
        return f"#{self.merged_contact_id} → {self.kept}"


class IdentityConflict(TenantModel):
    """A public call (write key, form) whose identifiers named two known contacts: not merged,
    kept here for an operator to merge or dismiss.

    ``contact`` is the one the call named by its email or user id (its event and traits went
    there); ``other_contact`` the known contact its other identifier (usually the browser's
    anonymous id) belongs to. One row per pair: the same call again counts ``occurrences``.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged"
        DISMISSED = "dismissed", "Dismissed"

    contact = models.ForeignKey(
        Contact,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The contact the call named (its email or user id); the call was stored against it.",
    )
    other_contact = models.ForeignKey(
        Contact,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The other known contact the call's identifiers point at.",
    )
    identifiers = models.JSONField(
        default=dict, help_text='Per identifier the call sent, its value and whose it is: {"value": …, "contact": id}.'
    )
    source = models.CharField(max_length=40, help_text="identify, alias, form or event.")
    summary = models.JSONField(
        default=dict, blank=True, help_text="The call's shape: its kind and the names (not values) of what it sent."
    )
    occurrences = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    merge = models.ForeignKey(
        ContactMerge,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The merge that resolved it.",
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        indexes = [models.Index(fields=["org", "status", "last_seen_at"], name="identityconflict_org_status")]

    def __str__(self) -> str:
        return f"#{self.contact_id or '?'} / #{self.other_contact_id or '?'} ({self.get_status_display()})"


class DispatchBatch(TenantModel):
    """Stored events waiting to be (or that were) handed to the event consumers, one row per batch.

    It commits with the events, so a lost Celery message only delays them: the sweeper sends
    any batch still pending after a while again.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    event_ids = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "dispatch batches"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="dispatchbatch_due")]

    def __str__(self) -> str:
        return f"Batch #{self.pk} ({len(self.event_ids)} events, {self.status})"


class ImportJob(TenantModel):
    """A CSV import of contacts or events; resumable from ``rows_done``."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", "Contacts"
        EVENTS = "events", "Events"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    file = models.FileField(upload_to="imports/", max_length=300)
    file_sha256 = models.CharField(max_length=64)
    mapping = models.JSONField(help_text='CSV column → field, e.g. {"E-mail": "email", "Plan": "properties.plan"}.')
    dry_run = models.BooleanField(default=False)
    dispatch = models.BooleanField(default=False, help_text="Hand imported events to workflows, scoring, segments.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import #{self.pk} ({self.status})"


class ImportRowError(models.Model):
    """One rejected row of an import: which row, which column, why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(help_text="1-based data row (the header is row 0).")
    column = models.CharField(max_length=200)
    reason = models.TextField()

    class Meta:
        ordering = ["row", "id"]

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.reason}"


@history_tracked(exclude=("member_count", "computed_at"))
class Segment(TenantModel):
    """A set of contacts: dynamic (everyone matching a rule, kept in step) or static (a list)."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic (a rule)"
        STATIC = "static", "Static (added by hand)"

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rule = models.JSONField(null=True, blank=True, help_text="A JsonLogic rule over contacts (dynamic only).")
    member_count = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    library_template = models.SlugField(
        max_length=100, blank=True, help_text="The library template that made it (empty: made by hand)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="segment_unique_slug")]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(TenantModel):
    """A contact's time in a segment; history is kept (a row per stay, closed by ``exited_at``)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_memberships")
    entered_at = models.DateTimeField(default=timezone.now)
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "contact"],
                condition=models.Q(exited_at__isnull=True),
                name="segmentmembership_one_open_stay",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "contact"], name="segmentmembership_org_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.segment}"


class ErasedIdentity(TenantModel):
    """An email, phone or user id erased at the person's request, kept only as a keyed hash
    (``marketing.erased_identities``): identify, events, imports and forms refuse to store it again."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"
        USER_ID = "user_id", "User id"

    kind = models.CharField(max_length=7, choices=Kind.choices)
    digest = models.CharField(max_length=64, help_text="HMAC-SHA256 of the normalised value under ERASURE_HASH_KEY.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "erased identity"
        verbose_name_plural = "erased identities"
        constraints = [models.UniqueConstraint(fields=["org", "kind", "digest"], name="erasedidentity_unique")]

    def __str__(self) -> str:
        return f"erased {self.kind} {self.digest[:12]}…"


class AuditEntry(models.Model):
    """One thing someone did to or read of an org's data: who, how, what, which fields.

    Never a value: ``fields`` names the fields read or changed, ``target_id`` is an id, so the log
    can be kept longer than the personal data it speaks of (erasure leaves it as it is).
    Append-only in the database (``AppendOnly`` below, PostgreSQL only): no role updates a row, and
    only the table's owner deletes them (``manage.py audit_purge``). Written by
    ``marketing.audit.audit_record``.
    """

    class Source(models.TextChoices):
        CONSOLE = "console", "Console"
        API = "api", "API"
        TASK = "task", "Task"
        COMMAND = "command", "Command"
        PUBLIC = "public", "Public page"

    class Verb(models.TextChoices):
        VIEWED = "viewed", "Viewed"
        LISTED = "listed", "Listed"
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"
        EXPORTED = "exported", "Exported"
        DOWNLOADED = "downloaded", "Downloaded"
        ERASED = "erased", "Erased"
        MERGED = "merged", "Merged"
        PUBLISHED = "published", "Published"
        IMPORTED = "imported", "Imported"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"
        PURGED = "purged", "Purged"

    # No foreign-key constraints and no cascades: entries outlive the org, user or key they name
    # (a cascade or SET NULL would be an UPDATE or DELETE, which the table refuses).
    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )  # indexed first in the composite indexes below
    at = models.DateTimeField(default=timezone.now)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # (org, actor_user, at) below
        related_name="+",
        verbose_name="user",
    )
    actor_api_key = models.ForeignKey(
        "ApiKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name="API key",
    )
    actor_label = models.CharField(
        "actor",
        max_length=150,
        blank=True,
        help_text="The user's name, the key's name and prefix, or the task or command.",
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    verb = models.CharField(max_length=20, choices=Verb.choices)
    target_type = models.CharField(max_length=100, blank=True, help_text="app_label.model, e.g. marketing.contact.")
    target_id = models.CharField(max_length=64, blank=True)
    fields = models.JSONField(default=list, blank=True, help_text="Names of the fields read or changed; never values.")
    count = models.PositiveIntegerField(null=True, blank=True, help_text="Rows listed or exported.")
    request_id = models.CharField(max_length=32, blank=True)

    objects = ScopedManager(org="org")

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["org", "-at"], name="auditentry_org_at"),
            models.Index(fields=["org", "target_type", "target_id"], name="auditentry_org_target"),
            models.Index(fields=["org", "actor_user", "-at"], name="auditentry_org_user"),
        ]
        triggers = [AppendOnly(name="auditentry_append_only")]

    def __str__(self) -> str:
        target = f"{self.target_type} #{self.target_id}" if self.target_id else self.target_type
        return f"{self.actor_label or self.source} {self.verb} {target}".strip()
