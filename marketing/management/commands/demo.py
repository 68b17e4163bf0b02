"""``python manage.py demo``: migrate, seed the demo org, and serve the console.

The one command a newcomer runs after installing: on the embedded default (SQLite, no broker)
it brings up a working console with demo data and prints where and how to log in.
"""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand

CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"
KEPT_MAIL = "django.core.mail.backends.locmem.EmailBackend"


class Command(BaseCommand):
    help = "Migrates, seeds the demo org 'acme' and starts the console (embedded mode needs no services)."

    def add_arguments(self, parser):
        parser.add_argument(
            "addrport", nargs="?", default="127.0.0.1:8000", help="Where to serve (default 127.0.0.1:8000)."
        )
        parser.add_argument("--no-serve", action="store_true", help="Prepare the data, then exit.")

    def handle(self, *args, addrport: str, no_serve: bool, **options):
        from django.conf import settings

        if "EMAIL_URL" not in os.environ and settings.EMAIL_BACKEND == CONSOLE_MAIL:
            # The demo makes handoffs whose notices would print their whole body here: they stay in
            # the console's outbox (Messages → Outbox) with one log line each instead.
            settings.EMAIL_BACKEND = KEPT_MAIL
            self.stdout.write("Mail stays in the outbox (set EMAIL_URL to send it).")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        call_command("seed_demo", stdout=self.stdout)
        host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nConsole: http://{host}/admin/  — log in as admin / demo (also: marketer, sales1, sales2)\n"
                f"Tracking demo: http://{host}/t/demo/  — a page with the JS snippet and a form\n"
                f"API docs: http://{host}/api/docs/  — create a key with:"
                " python manage.py create_api_key --org acme --name demo\n"
            )
        )
        if not no_serve:
            from marketing.embedded import embedded_services_start

            if settings.EMBEDDED:
                # No beat or workers here: threads do their work (advancing workflow runs).
                embedded_services_start()
            call_command("runserver", addrport, use_reloader=False)
