"""Consent regimes per organisation, each contact's current consent state per purpose (derived
from the records, filled here from the existing ones) and consents awaiting confirmation."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from marketing.postgres_operations import row_security

REGIMES = [
    ("opt_in", "Opt-in: not until the person agrees (GDPR)"),
    ("opt_out", "Opt-out: allowed until the person says no (CCPA)"),
]
PURPOSES = [
    ("email_marketing", "Email marketing"),
    ("sms", "SMS marketing"),
    ("push", "Web push"),
    ("tracking", "Tracking"),
    ("profiling", "Profiling"),
    ("sale_sharing", "Sale or sharing of data"),
]


def states_from_records(apps, schema_editor):
    """Each (contact, purpose)'s newest record becomes its state: what the send guard read before."""
    ConsentRecord = apps.get_model("compliance", "ConsentRecord")
    ConsentState = apps.get_model("compliance", "ConsentState")
    records = (
        ConsentRecord.objects.filter(contact__isnull=False)
        .order_by("contact_id", "purpose", "-recorded_at", "-id")
        .values_list("org_id", "contact_id", "purpose", "granted", "recorded_at")
    )
    seen, rows = set(), []
    for org_id, contact_id, purpose, granted, recorded_at in records.iterator(chunk_size=5000):
        if (contact_id, purpose) in seen:
            continue
        seen.add((contact_id, purpose))
        rows.append(
            ConsentState(
                org_id=org_id, contact_id=contact_id, purpose=purpose, granted=granted, recorded_at=recorded_at
            )
        )
        if len(rows) >= 5000:
            ConsentState.objects.bulk_create(rows)
            rows = []
    ConsentState.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_consent_outlives_contact_and_requests"),
        ("marketing", "0012_invitations"),
        ("marketing", "0013_row_security"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsentRegime",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "email_marketing",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_in",
                        help_text="Marketing emails.",
                        max_length=10,
                        verbose_name="Email marketing",
                    ),
                ),
                (
                    "sms",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_in",
                        help_text="Marketing text messages.",
                        max_length=10,
                        verbose_name="SMS marketing",
                    ),
                ),
                (
                    "push",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_in",
                        help_text="Marketing web-push notifications.",
                        max_length=10,
                        verbose_name="Web push",
                    ),
                ),
                (
                    "tracking",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_out",
                        help_text="Storing page views, app events, email opens and clicks.",
                        max_length=10,
                        verbose_name="Tracking",
                    ),
                ),
                (
                    "profiling",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_out",
                        help_text="Lead scoring and the predicted chance to convert.",
                        max_length=10,
                        verbose_name="Profiling",
                    ),
                ),
                (
                    "sale_sharing",
                    models.CharField(
                        choices=REGIMES,
                        default="opt_out",
                        help_text="Sending a contact's data to third parties: webhooks and webhook destinations.",
                        max_length=10,
                        verbose_name="Sale or sharing of data",
                    ),
                ),
                (
                    "double_opt_in",
                    models.BooleanField(
                        default=True,
                        help_text="Consent ticked on a public form counts once the person confirms it by email.",
                        verbose_name="Double opt-in for forms",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={
                "verbose_name": "consent regimes",
                "verbose_name_plural": "consent regimes",
                "constraints": [models.UniqueConstraint(fields=("org",), name="consent_regime_one_per_org")],
            },
        ),
        migrations.CreateModel(
            name="ConsentState",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("purpose", models.CharField(choices=PURPOSES, max_length=20)),
                ("granted", models.BooleanField()),
                ("recorded_at", models.DateTimeField()),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="consent_states",
                        to="marketing.contact",
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["org", "purpose", "granted", "contact"], name="consent_state_lookup")],
                "constraints": [
                    models.UniqueConstraint(fields=("contact", "purpose"), name="consent_state_one_per_purpose")
                ],
            },
        ),
        migrations.CreateModel(
            name="PendingConsent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "purposes",
                    models.CharField(help_text="The purposes to grant, comma-separated and sorted.", max_length=120),
                ),
                (
                    "proof",
                    models.JSONField(
                        blank=True, default=dict, help_text="The form's proof: wording, form, time, IP, agent."
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "sent_at",
                    models.DateTimeField(blank=True, help_text="When the confirmation email last went out.", null=True),
                ),
                ("sends", models.PositiveSmallIntegerField(default=0)),
                ("confirmed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "contact",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pending_consents",
                        to="marketing.contact",
                    ),
                ),
                (
                    "event",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="marketing.event",
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="marketing.organization"
                    ),
                ),
            ],
            options={
                "verbose_name": "consent awaiting confirmation",
                "verbose_name_plural": "consents awaiting confirmation",
                "ordering": ["-created_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("confirmed_at__isnull", True)),
                        fields=("contact", "purposes"),
                        name="pending_consent_one_open",
                    )
                ],
            },
        ),
        migrations.RunPython(states_from_records, migrations.RunPython.noop),
        row_security("compliance_consentregime", "compliance_consentstate", "compliance_pendingconsent"),
    ]
