"""The operations console's admin site: who may enter, and the org switcher.

Access is membership of an organisation (or superuser), not Django's ``is_staff`` flag; what a
member may do there follows their role in the org they act in (``marketing.roles``).
"""

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from unfold.forms import AuthenticationForm
from unfold.sites import UnfoldAdminSite

from marketing.tenancy import org_switch, orgs_for_user


class ConsoleLoginForm(AuthenticationForm):
    """Members of an organisation may log in; ``is_staff`` is not how access is granted here."""

    def confirm_login_allowed(self, user):
        if not user.is_active or not (user.is_superuser or orgs_for_user(user).exists()):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class ConsoleAdminSite(UnfoldAdminSite):
    site_header = "Marketing console"
    site_title = "Marketing console"
    index_title = "Operations"
    login_form = ConsoleLoginForm
    site_url = None  # the console is the site; no "view site" link

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and (user.is_superuser or getattr(request, "membership", None) is not None)

    def index(self, request: HttpRequest, extra_context=None):
        """The home: each role's panels (``marketing.console_home``), not the list of models,
        which is in the sidebar."""
        from marketing.console_home import home_panels

        context = {
            **self.each_context(request),
            "title": "Home",
            "subtitle": None,
            "panels": home_panels(request),
            **(extra_context or {}),
        }
        request.current_app = self.name
        return TemplateResponse(request, self.index_template or "admin/index.html", context)

    def get_urls(self):
        return [path("switch-org/", self.admin_view(org_switch), name="org_switch"), *super().get_urls()]

    def search(self, request: HttpRequest, extra_context=None):
        # unfold caches search results per user, not per org: a member of two orgs would get one
        # org's answers while acting in the other. The sidebar and command search are off too.
        raise Http404("Search is not available.")
