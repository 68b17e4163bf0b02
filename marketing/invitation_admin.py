"""Inviting teammates from the console's Members page (Settings → Members): an "Invite a teammate"
button for org admins, the invite form (email, role) and the pending invitations with Resend and
Revoke. Everything goes through ``marketing.invitations``; other roles get 403."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from marketing.invitations import invitation_resend, invitation_revoke, invitation_send, max_age
from marketing.models import Invitation, Role

CHANGELIST = "admin:marketing_membership_changelist"


def may_invite(request) -> bool:
    """Org admins (``marketing.roles`` grants them ``add_invitation``) and superusers."""
    membership = getattr(request, "membership", None)
    if request.user.is_superuser:
        return getattr(request, "org", None) is not None
    return (
        membership is not None and membership.role == Role.ADMIN and request.user.has_perm("marketing.add_invitation")
    )


class InviteForm(forms.Form):
    email = forms.CharField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@example.com"}),
        help_text="Where the invitation goes; the person signs in with this address.",
    )
    role = forms.ChoiceField(
        label="Role",
        choices=Role.choices,
        initial=Role.MARKETER,
        help_text="What they may do here: admins also manage members and settings; sales reps see their queue.",
    )


class InvitationsOnMembers:
    """Mixed into the Members admin: the invite page, resend and revoke, and the pending list above
    the members (``list_before_template``)."""

    list_before_template = "admin/marketing/membership/invitations.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("invite/", wrap(self.invite_view), name="marketing_membership_invite"),
            path("invitations/<int:pk>/resend/", wrap(self.resend_view), name="marketing_invitation_resend"),
            path("invitations/<int:pk>/revoke/", wrap(self.revoke_view), name="marketing_invitation_revoke"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"may_invite": may_invite(request)}
        if extra["may_invite"]:
            pending = Invitation.objects.filter(org=request.org, status=Invitation.Status.PENDING)
            extra["pending_invitations"] = list(pending.select_related("invited_by").order_by("-sent_at")[:200])
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def invite_view(self, request):
        """The form: an address and a role; sending it emails the link and lists it as pending."""
        if not may_invite(request):
            raise PermissionDenied
        form = InviteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                invitation = invitation_send(
                    org=request.org, email=form.cleaned_data["email"], role=form.cleaned_data["role"], by=request.user
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    f"Invitation sent to {invitation.email} as {invitation.get_role_display()}; "
                    f"the link works for {max_age().days} days.",
                )
                return HttpResponseRedirect(reverse(CHANGELIST))
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite a teammate",
            "opts": self.model._meta,
            "form": form,
            "days": max_age().days,
        }
        return TemplateResponse(request, "admin/marketing/membership/invite.html", context)

    def _invitation_action(self, request, pk: int, service, done: str):
        if not may_invite(request):
            raise PermissionDenied
        try:
            invitation = service(org=request.org, invitation_id=pk, by=request.user)
        except Invitation.DoesNotExist:
            raise Http404("No such invitation in this organisation.") from None
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), level=messages.WARNING)
        else:
            self.message_user(request, done.format(email=invitation.email))
        return HttpResponseRedirect(reverse(CHANGELIST))

    def resend_view(self, request, pk: int):
        """POST: the pending invitation's email again, with a fresh link."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return self._invitation_action(request, pk, invitation_resend, "Invitation sent to {email} again.")

    def revoke_view(self, request, pk: int):
        """POST: the invitation's links stop working."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return self._invitation_action(request, pk, invitation_revoke, "Invitation to {email} revoked.")
