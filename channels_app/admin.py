"""Console pages of the channels app: message templates (validated at save, published as
versions, previewed against a real contact), the outbox and the suppression list."""

import json
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from unfold.contrib.filters.admin import AutocompleteSelectFilter

from channels_app.console_home import OPENED, WAITING
from channels_app.destinations import masked_secret, masked_url, url_problem
from channels_app.models import Destination, Message, MessageStatus, MessageTemplate, Purpose, Suppression
from channels_app.outbox import CONSENT_PURPOSE, notice_enqueue
from channels_app.rendering import FIELDS, template_errors, template_warnings
from channels_app.template_problems import template_problems
from channels_app.template_versions import template_preview, template_publish
from marketing.admin import ReadOnlyAdmin, RecentWindowFilter, TenantAdmin, phone_searched
from marketing.field_encryption import phone_index
from marketing.models import Contact


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        # The topic's pick-list is the admin's (from get_fields, so its org-scoped query runs per request).
        fields = ("slug", "name", "channel", "purpose", "variants")
        help_texts = {
            "variants": 'A list of variants: [{"name": "A", "weight": 50, "subject": "Hi {{ first_name | default: '
            '\'there\' }}", "html": "…", "text": "…"}]. Fields by channel: email subject, preheader, html, text; '
            "SMS text; push title, body, url; Slack, webhook and social text or payload. With JavaScript on, the "
            "variant editor above writes this for you.",
        }

    def clean(self):
        cleaned = super().clean()
        if "channel" in cleaned and "variants" in cleaned:
            errors = template_errors(cleaned["channel"], cleaned["variants"])
            if errors:
                self.add_error("variants", errors)
        topic = cleaned.get("topic")
        if topic is not None and cleaned.get("purpose") == Purpose.MARKETING:
            needed = CONSENT_PURPOSE.get(cleaned.get("channel"))
            if needed is not None and topic.purpose != needed:
                self.add_error(
                    "topic",
                    f"“{topic}” is a topic of {topic.get_purpose_display().lower()}; choose one of this channel's.",
                )
        elif topic is not None:
            self.add_error("topic", "Only marketing messages have a topic; transactional ones always go out.")
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TenantAdmin):
    """Templates: the draft is checked at save (every field parsed in the sandbox), "Publish"
    freezes it as a version that new messages use, "Preview" renders it for a real contact."""

    form = MessageTemplateForm
    list_display = ("name", "slug", "channel", "purpose", "live", "library_template", "updated_at")
    list_filter = ("channel", "purpose", "library_template")
    search_fields = ("name", "slug")
    list_select_related = ("live_version",)
    readonly_fields = ("live_version", "preview_link")
    actions = ("publish",)

    @admin.display(description="live version")
    def live(self, obj: MessageTemplate) -> str:
        return f"v{obj.live_version.number}" if obj.live_version else "—"

    @admin.display(description="preview")
    def preview_link(self, obj: MessageTemplate) -> str:
        if obj.pk is None:
            return "Save first."
        return format_html(
            '<a href="{}">Preview for a contact</a>',
            reverse("admin:channels_app_messagetemplate_preview", args=[obj.pk]),
        )

    def get_fields(self, request, obj=None):
        return ["slug", "name", "channel", "purpose", "topic", "variants", "live_version", "preview_link"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for warning in template_warnings(obj.channel, obj.variants):
            self.message_user(request, warning, messages.WARNING)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if self.has_add_permission(request) if obj is None else self.has_change_permission(request, obj):
            context["message_editor"] = self._editor_config(context["adminform"].form)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _editor_config(self, form) -> dict:
        """What the variant editor (``static/console/message_editor.js``) needs: the API, each
        channel's fields, and the form's problems with the variants, each on its variant's field."""
        problems = []
        if form.errors.get("variants"):
            try:
                submitted = json.loads(form.data.get("variants", ""))
            except (TypeError, ValueError):
                submitted = None  # not JSON: the box's own error says so
            problems = template_problems(list(form.errors["variants"]), submitted)
        return {
            "api": reverse("api-conditions-fields").removesuffix("conditions/fields/"),  # under any script prefix
            "fields": FIELDS,
            "problems": problems,
            "contactUrl": reverse("admin:marketing_contact_change", args=[0]),
        }

    @admin.action(description="Publish the selected templates", permissions=["change"])
    def publish(self, request, queryset):
        for template in queryset:
            try:
                version = template_publish(template=template, by=request.user)
            except ValidationError as exc:
                self.message_user(request, f"{template}: {'; '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{template}: version {version.number} is live.", messages.SUCCESS)

    def get_urls(self):
        view = self.admin_site.admin_view(self.preview_view)
        return [
            path("<path:object_id>/preview/", view, name="channels_app_messagetemplate_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id):
        """The draft rendered for the contact named by ``?contact=`` (an id or an email)."""
        template = self.get_object(request, unquote(object_id))
        if template is None or not self.has_view_permission(request, template):
            raise Http404
        wanted = request.GET.get("contact", "").strip()
        contacts = Contact.objects.filter(org=request.org)
        contact = (
            (
                contacts.filter(pk=int(wanted)).first()
                if wanted.isdigit()
                else contacts.filter(email=wanted.lower()).first()
            )
            if wanted
            else contacts.order_by("pk").first()
        )
        content, error = {}, ""
        if contact is None:
            error = f"No contact “{wanted}” in this organisation." if wanted else "This organisation has no contacts."
        else:
            try:
                content = template_preview(
                    template=template, contact=contact, variant_name=request.GET.get("variant") or None
                )
            except ValidationError as exc:
                error = "; ".join(exc.messages)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": template,
            "title": f"Preview of {template}",
            "contact": contact,
            "wanted": wanted,
            "variants": [v.get("name") for v in template.variants if isinstance(v, dict)],
            "content": content,
            "error": error,
        }
        if request.method == "POST":
            if not self.has_change_permission(request, template):
                raise PermissionDenied
            if content and not error:
                self._send_test(request, template, content)
        return TemplateResponse(request, "admin/channels_app/messagetemplate/preview.html", context)

    def _send_test(self, request, template: MessageTemplate, content: dict) -> None:
        """ "Send test to me": the preview, as rendered, to the console user's own address, as an
        outbox message with no contact (transactional: no consent needed, a suppressed address is
        still refused), so it shows in the outbox with its status; the subject says it is a test."""
        if template.channel != "email":
            self.message_user(request, "Test sends are for email templates.", messages.ERROR)
            return
        if not request.user.email:
            self.message_user(request, "Your user has no email address to send the test to.", messages.ERROR)
            return
        message = notice_enqueue(
            org=request.org,
            to=request.user.email,
            user=request.user,
            subject=f"[Test] {content.get('subject', '')}",
            text=content.get("text", ""),
            html=content.get("html", ""),
            key=f"test-{template.pk}-{request.user.pk}-{uuid.uuid4().hex}",
        )
        url = reverse("admin:channels_app_message_change", args=[message.pk])
        self.message_user(
            request,
            format_html('Test queued for {}: <a href="{}">see it in the outbox</a>.', request.user.email, url),
            messages.SUCCESS,
        )


class SentFilter(RecentWindowFilter):
    title = "sent"
    parameter_name = "sent"
    field = "sent_at"


class CreatedFilter(RecentWindowFilter):
    title = "queued"
    parameter_name = "created"
    field = "created_at"
    windows = (("1", "Last 24 hours"), ("7", "Last 7 days"))


class EngagementFilter(admin.SimpleListFilter):
    """Opened counts a message the person clicked too (a click is the later status)."""

    title = "engagement"
    parameter_name = "engagement"
    statuses = {"opened": OPENED, "clicked": (MessageStatus.CLICKED,)}

    def lookups(self, request, model_admin):
        return (("opened", "Opened (or clicked)"), ("clicked", "Clicked"))

    def queryset(self, request, queryset):
        if self.value() in self.statuses:
            return queryset.filter(status__in=self.statuses[self.value()])
        return queryset


class WaitingFilter(admin.SimpleListFilter):
    """Not sent yet and not being sent: queued, or held by quiet hours or a frequency cap."""

    title = "outbox"
    parameter_name = "outbox"

    def lookups(self, request, model_admin):
        return (("waiting", "Waiting to send"),)

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(status__in=WAITING)
        return queryset


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The outbox: every message, with its status history; read-only (sending is the outbox's job)."""

    list_display = ("created_at", "channel", "to", "subject", "status", "purpose", "workflow", "step_id", "attempts")
    list_filter = (
        "status",
        "channel",
        "purpose",
        SentFilter,
        EngagementFilter,
        WaitingFilter,
        CreatedFilter,
        ("workflow", AutocompleteSelectFilter),
    )
    list_filter_submit = True
    search_fields = ("to", "contact__email", "idempotency_key", "provider_message_id")
    search_help_text = (
        "Search by recipient, contact email, idempotency key or provider id; a phone number (encrypted) "
        "by the whole number, which finds the texts to the contact who has it."
    )
    list_select_related = ("workflow",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "contact",
        "channel",
        "purpose",
        "to",
        "template_version",
        "variant",
        "workflow",
        "instance",
        "step_id",
        "idempotency_key",
        "status",
        "history",
        "provider",
        "provider_message_id",
        "error",
        "attempts",
        "next_attempt_at",
        "created_at",
        "sent_at",
        "content",
    )
    fields = readonly_fields

    def get_search_results(self, request, queryset, search_term):
        """An SMS recipient is encrypted: a whole phone number finds the messages of the contacts
        with that number (through ``phone_bidx``) besides what the search fields match."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        phone = phone_searched(search_term, request.org)
        if phone:
            found |= queryset.filter(contact__phone_bidx=phone_index(phone))
        return found, duplicates

    @admin.display(description="subject")
    def subject(self, obj: Message) -> str:
        return obj.content.get("subject") or obj.content.get("title") or ""

    @admin.display(description="status history")
    def history(self, obj: Message) -> str:
        return format_html_join(
            "\n",
            "<div>{} — {} {}</div>",
            ((h.get("at"), h.get("status"), h.get("reason", "")) for h in obj.status_history),
        )


@admin.register(Suppression)
class SuppressionAdmin(TenantAdmin):
    """Addresses nothing is sent to on a channel; add one by hand, or remove one to send again."""

    list_display = ("address", "channel", "reason", "created_at")
    list_filter = ("channel", "reason")
    search_fields = ("address",)
    fields = ("channel", "address", "reason", "detail")

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else ()

    def save_model(self, request, obj, form, change):
        # Stored as the guards compare them: emails lower-cased, everything stripped.
        obj.address = obj.address.strip().lower() if obj.channel == "email" else obj.address.strip()
        super().save_model(request, obj, form, change)


class DestinationForm(forms.ModelForm):
    """The secret, and a Slack destination's URL (a credential itself), are write-only: the page
    never holds the stored value, and an empty field keeps it."""

    url = forms.URLField(max_length=1000, assume_scheme="https", help_text=Destination._meta.get_field("url").help_text)
    secret = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=Destination._meta.get_field("secret").help_text,
    )

    class Meta:
        model = Destination
        fields = ("slug", "name", "channel", "url", "secret", "active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance if self.instance.pk else None
        if stored is not None and stored.secret:
            self.fields["secret"].help_text = f"Stored ({masked_secret(stored.secret)}); leave empty to keep it."
        if stored is not None and stored.channel == "slack":
            self.fields["url"].required = False
            self.fields["url"].widget = forms.PasswordInput(render_value=False)
            self.fields["url"].help_text = f"Stored ({masked_url(stored.url)}); leave empty to keep it."

    def clean_secret(self):
        return self.cleaned_data.get("secret") or (self.instance.secret if self.instance.pk else "")

    def clean_url(self):
        url = self.cleaned_data.get("url") or (self.instance.url if self.instance.pk else "")
        if not url and self.instance.library_template:
            return ""  # the library's destinations log their messages until given a URL
        problem = url_problem(url) if url else "This field is required."
        if problem:
            raise ValidationError(problem)
        return url


@admin.register(Destination)
class DestinationAdmin(TenantAdmin):
    """Slack webhooks, webhook endpoints and social accounts that workflows post to by slug; URLs
    are shown to the host only, secrets by their last four characters."""

    form = DestinationForm
    list_display = ("name", "slug", "channel", "target", "secret_masked", "active", "library_template", "created_at")
    list_filter = ("channel", "active", "library_template")
    search_fields = ("name", "slug")

    @admin.display(description="URL")
    def target(self, obj: Destination) -> str:
        return masked_url(obj.url)

    @admin.display(description="secret")
    def secret_masked(self, obj: Destination) -> str:
        return masked_secret(obj.secret) or "—"

    def get_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            # A read-only page would print the stored values in full.
            return ("slug", "name", "channel", "target", "secret_masked", "active", "created_at")
        return ("slug", "name", "channel", "url", "secret", "active")

    def get_readonly_fields(self, request, obj=None):
        return ("target", "secret_masked", "created_at")
