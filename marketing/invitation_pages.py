"""The page an invitation's link opens (``/invite/<token>/``): a new person sets their name and a
password, someone with an account under the invited address signs in (or, already signed in,
joins with one click); a link that was used, revoked or has expired says so and what to do."""

from django import forms
from django.contrib.auth import authenticate, login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from marketing.invitations import InvitationUnusableError, invitation_accept, invitation_for_token
from marketing.models import User
from marketing.tenancy import SESSION_KEY

TEMPLATE = "marketing/invitation.html"
# What each unusable link says: a title, what happened, what to do.
UNUSABLE = {
    "invalid": (
        400,
        "This invitation link does not work",
        "The link is incomplete or was changed.",
        "Open the link from the email again (copy the whole address), or ask the person who "
        "invited you to send a new invitation.",
    ),
    "expired": (
        410,
        "This invitation has expired",
        "Invitation links work for a limited time, and only the newest email's link works.",
        "Ask the person who invited you to resend the invitation from Settings → Members.",
    ),
    "revoked": (
        410,
        "This invitation was withdrawn",
        "An administrator of the organisation revoked it.",
        "If you should still join, ask them to invite you again.",
    ),
    "accepted": (
        410,
        "This invitation was already used",
        "Someone accepted it and joined the organisation with it.",
        "If that was you, sign in to the console.",
    ),
}


class NewAccountForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ; type the same password twice.")
        return cleaned


class SignInForm(forms.Form):
    password = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


def _unusable(request: HttpRequest, exc: InvitationUnusableError) -> HttpResponse:
    status, title, what, todo = UNUSABLE[exc.reason]
    context = {"title": title, "what": what, "todo": todo, "login_url": reverse("admin:login")}
    return TemplateResponse(request, TEMPLATE, context, status=status)


def _joined(request: HttpRequest, user: User, membership) -> HttpResponse:
    if request.user != user:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_KEY] = membership.org_id  # the console opens in the org just joined
    return HttpResponseRedirect(reverse("admin:index"))


def _apply(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@never_cache
@sensitive_post_parameters("password", "password_again")
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the form that fits the invited address; POST accepts and opens the console."""
    try:
        invitation = invitation_for_token(token)
    except InvitationUnusableError as exc:
        return _unusable(request, exc)
    existing = User.objects.filter(email__iexact=invitation.email, is_active=True).order_by("pk").first()
    signed_in_as_them = existing is not None and request.user.is_authenticated and request.user.pk == existing.pk
    data = request.POST if request.method == "POST" else None
    if existing is None:
        form = NewAccountForm(data)
    elif signed_in_as_them:
        form = forms.Form(data)  # one button: join
    else:
        form = SignInForm(data)
    if data is not None and form.is_valid():
        try:
            if existing is None:
                membership = invitation_accept(
                    token=token, **{k: form.cleaned_data[k] for k in ("first_name", "last_name", "password")}
                )
                user = membership.user
            else:
                user = (
                    existing
                    if signed_in_as_them
                    else authenticate(request, username=existing.get_username(), password=form.cleaned_data["password"])
                )
                if user is None:
                    raise ValidationError({"password": "That password is not right for this account."})
                membership = invitation_accept(token=token, user=user)
        except InvitationUnusableError as exc:
            return _unusable(request, exc)
        except ValidationError as exc:
            _apply(form, exc)
        else:
            return _joined(request, user, membership)
    context = {
        "title": f"Join {invitation.org.name}",
        "invitation": invitation,
        "form": form,
        "mode": "new" if existing is None else ("join" if signed_in_as_them else "sign_in"),
        "username": existing.get_username() if existing else "",
    }
    return TemplateResponse(request, TEMPLATE, context, status=400 if form.errors else 200)
