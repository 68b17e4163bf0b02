"""The operations console: the admin site, its org switcher, and the ground floor's pages.

Every tenant page shows only the current org's rows: the models' managers are scoped to it
(``marketing.tenancy``), new rows get it on save, and choices of users are limited to its
members. Permissions come from the member's role in that org (``marketing.roles``).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from marketing import services
from marketing.models import (
    ApiKey,
    Company,
    Contact,
    ContactList,
    LifecycleStage,
    ListMembership,
    Membership,
    Organization,
    Tag,
    User,
)


def org_member_users(org):
    """Users who may own records in ``org``: its members."""
    return User.objects.filter(pk__in=Membership.objects.filter(org=org).values("user_id")).order_by("username")


class TenantAdmin(admin.ModelAdmin):
    """Base for tenant models: new rows get the current org, and org-wide uniqueness is checked."""

    exclude = ("org",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        org = request.org

        class TenantForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                if self.instance.org_id is None:
                    self.instance.org = org

            def _get_validation_exclusions(self):
                # org is not on the form, but unique (org, …) constraints must still be checked.
                exclude = super()._get_validation_exclusions()
                exclude.discard("org")
                return exclude

        return TenantForm

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.remote_field.model is User:
            kwargs["queryset"] = org_member_users(request.org)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OwnerFilter(admin.SimpleListFilter):
    """Owner, limited to the org's members (the built-in filter would list every user)."""

    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("none", "No owner")] + [
            (str(u.pk), u.get_full_name() or u.username) for u in org_member_users(request.org)
        ]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(owner__isnull=True)
        if self.value() and self.value().isdigit():
            return queryset.filter(owner_id=int(self.value()))
        return queryset


class ListMembershipInline(admin.TabularInline):
    model = ListMembership
    extra = 0
    fields = ("contact_list", "added_at")
    readonly_fields = ("added_at",)
    autocomplete_fields = ("contact_list",)
    verbose_name = "list"
    verbose_name_plural = "lists"


class TagForm(forms.Form):
    tags = forms.CharField(help_text="Comma-separated; new tags are created.")


class ListForm(forms.Form):
    contact_list = forms.ModelChoiceField(queryset=ContactList.objects.none(), label="List")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact_list"].queryset = ContactList.objects.all()


class StageForm(forms.Form):
    stage = forms.ChoiceField(choices=LifecycleStage.choices, label="Lifecycle stage")


@admin.register(Contact)
class ContactAdmin(TenantAdmin):
    list_display = (
        "display_name",
        "email",
        "company",
        "lifecycle_stage",
        "lead_status",
        "score",
        "owner",
        "country",
        "created_at",
    )
    list_display_links = ("display_name", "email")
    list_filter = ("lifecycle_stage", "lead_status", OwnerFilter, "tags", "lists", "country", "created_at")
    search_fields = ("email", "first_name", "last_name", "company__name")
    search_help_text = "Search by email, name or company."
    list_select_related = ("company", "owner")
    show_full_result_count = False  # the filtered count is shown; the second, total count is not
    list_per_page = 50
    autocomplete_fields = ("company", "tags")
    readonly_fields = ("score", "created_at", "updated_at", "last_activity_at")
    inlines = (ListMembershipInline,)
    actions = ("add_tags", "remove_tags", "add_to_list", "remove_from_list", "set_stage")
    fieldsets = (
        (None, {"fields": ("email", "phone", ("first_name", "last_name"), "company", "job_title")}),
        ("Locale", {"fields": ("country", "time_zone", "locale")}),
        ("Lifecycle", {"fields": ("lifecycle_stage", "lead_status", "owner", "score")}),
        ("Tags and properties", {"fields": ("tags", "properties")}),
        ("History", {"fields": ("created_at", "updated_at", "last_activity_at"), "classes": ("collapse",)}),
    )

    def get_search_results(self, request, queryset, search_term):
        """Every word must match the email, a name or the company name (case-insensitive).

        The company is matched through a subquery rather than a join, so that all conditions
        are on the contact table and PostgreSQL can combine its trigram indexes.
        """
        for word in search_term.split():
            companies = Company.objects.filter(org=request.org, name__icontains=word).values("pk")
            queryset = queryset.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(company__in=companies)
            )
        return queryset, False

    @admin.display(description="name", ordering="last_name")
    def display_name(self, obj: Contact) -> str:
        return f"{obj.first_name} {obj.last_name}".strip() or "—"

    def _bulk_form(self, request, queryset, form_class, title, apply):
        """Shows ``form_class`` for the selected contacts; on submit calls ``apply(form, qs)``."""
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                try:
                    count = apply(form, queryset)
                except ValidationError as exc:
                    self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                else:
                    self.message_user(request, f"{title}: {count} contact(s).", messages.SUCCESS)
                return HttpResponseRedirect(request.get_full_path())
        else:
            form = form_class()
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across") == "1",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/marketing/contact/bulk_action.html", context)

    @admin.action(description="Add tags to the selected contacts", permissions=["change"])
    def add_tags(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            TagForm,
            "Add tags",
            lambda form, qs: services.contacts_tag(
                org=request.org, contacts=qs, names=form.cleaned_data["tags"].split(",")
            ),
        )

    @admin.action(description="Remove tags from the selected contacts", permissions=["change"])
    def remove_tags(self, request, queryset):
        def apply(form, qs):
            names = [n.strip() for n in form.cleaned_data["tags"].split(",")]
            return services.contacts_untag(org=request.org, contacts=qs, tags=Tag.objects.filter(name__in=names))

        return self._bulk_form(request, queryset, TagForm, "Remove tags", apply)

    @admin.action(description="Add the selected contacts to a list", permissions=["change"])
    def add_to_list(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            ListForm,
            "Add to list",
            lambda form, qs: services.contacts_add_to_list(
                org=request.org, contacts=qs, contact_list=form.cleaned_data["contact_list"]
            ),
        )

    @admin.action(description="Remove the selected contacts from a list", permissions=["change"])
    def remove_from_list(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            ListForm,
            "Remove from list",
            lambda form, qs: services.contacts_remove_from_list(
                org=request.org, contacts=qs, contact_list=form.cleaned_data["contact_list"]
            ),
        )

    @admin.action(description="Set the lifecycle stage of the selected contacts", permissions=["change"])
    def set_stage(self, request, queryset):
        return self._bulk_form(
            request,
            queryset,
            StageForm,
            "Set lifecycle stage",
            lambda form, qs: services.contacts_set_stage(
                org=request.org, contacts=qs, stage=form.cleaned_data["stage"]
            ),
        )


@admin.register(Company)
class CompanyAdmin(TenantAdmin):
    list_display = ("name", "domain", "industry", "size", "revenue", "contacts_link")
    ordering = ("name",)
    list_filter = ("industry",)
    search_fields = ("name", "domain")
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("name", "domain", "industry", ("size", "revenue"))}),
        ("Properties", {"fields": ("properties",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contact_count=Count("contacts"))

    @admin.display(description="contacts", ordering="contact_count")
    def contacts_link(self, obj: Company) -> str:
        url = reverse("admin:marketing_contact_changelist") + f"?company__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.contact_count)


@admin.register(Tag)
class TagAdmin(TenantAdmin):
    list_display = ("name", "contact_count")
    ordering = ("name",)
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contact_count=Count("contacts"))

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, obj: Tag) -> int:
        return obj.contact_count


@admin.register(ContactList)
class ContactListAdmin(TenantAdmin):
    list_display = ("name", "slug", "member_count", "created_at")
    ordering = ("name",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("contacts"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: ContactList) -> int:
        return obj.member_count


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ("user", "user_email", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "user__first_name", "user__last_name")
    list_select_related = ("user",)

    @admin.display(description="email", ordering="user__email")
    def user_email(self, obj: Membership) -> str:
        return obj.user.email

    def has_add_permission(self, request):
        # Adding someone means choosing among every user of the installation.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and request.user.is_superuser:
            kwargs["queryset"] = User.objects.order_by("username")
            return admin.ModelAdmin.formfield_for_foreignkey(self, db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "scope")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    list_display = ("name", "masked", "scope", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix")
    list_select_related = ("created_by",)
    actions = ("revoke",)
    form = ApiKeyForm

    @admin.display(description="key")
    def masked(self, obj: ApiKey) -> str:
        return f"mk_{obj.prefix}_…"

    def get_fields(self, request, obj=None):
        return (
            ("name", "scope")
            if obj is None
            else ("name", "scope", "masked", "created_by", "created_at", "last_used_at", "revoked_at")
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("scope", "masked", "created_by", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = services.api_key_create(org=request.org, name=obj.name, scope=obj.scope, by=request.user)
        obj.pk = key.pk
        self.message_user(
            request, format_html("Copy the key now; it is not shown again: <code>{}</code>", raw), messages.WARNING
        )

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(key=key)
        self.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "default_time_zone", "default_country", "created_at")
    search_fields = ("name", "slug")
    fieldsets = (
        (None, {"fields": ("name", "slug", "postal_address")}),
        ("Defaults", {"fields": ("default_time_zone", "default_country", "from_name", "from_email")}),
        ("Sending limits", {"fields": ("frequency_caps", ("quiet_hours_start", "quiet_hours_end"))}),
    )

    def get_queryset(self, request):
        # Superusers manage every org; members see the org they are acting in.
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(Q(pk=getattr(request.org, "pk", None)))

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


# Roles come from memberships (marketing.roles), not Django's global groups.
admin.site.unregister(Group)


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    """Users of the installation: superusers only (org admins manage roles under Memberships)."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
