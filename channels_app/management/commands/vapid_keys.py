"""``python manage.py vapid_keys [--subject mailto:ops@example.com]``.

Prints a fresh VAPID key pair (RFC 8292) for web push as lines of the env file:
``VAPID_PUBLIC_KEY`` (the uncompressed P-256 point, what browsers subscribe with) and
``VAPID_PRIVATE_KEY`` (the 32-byte private number), both URL-safe base64 without padding, and
``VAPID_SUBJECT``. Nothing is written anywhere: paste the lines into ``.env`` or the secret store.
Generate once per deployment: browsers subscribed with one public key are only reachable with
its private key, so a new pair means every browser subscribes again.
"""

import base64

from django.core.management.base import BaseCommand, CommandError
from py_vapid import Vapid

from channels_app.providers.push import public_key_of


class Command(BaseCommand):
    help = "Prints a new VAPID key pair for web push, as VAPID_* lines for the env file."

    def add_arguments(self, parser):
        parser.add_argument(
            "--subject",
            default="mailto:ops@example.com",
            help="Who push services may contact about our pushes: a mailto: or https: URL.",
        )

    def handle(self, *args, subject: str, **options):
        if not subject.startswith(("mailto:", "https:")):
            raise CommandError("--subject must be a mailto: or https: URL, e.g. mailto:ops@example.com.")
        key = Vapid()
        key.generate_keys()
        private = key.private_key.private_numbers().private_value.to_bytes(32, "big")
        self.stdout.write(f"VAPID_PUBLIC_KEY={public_key_of(key)}")
        self.stdout.write(f"VAPID_PRIVATE_KEY={base64.urlsafe_b64encode(private).decode().rstrip('=')}")
        self.stdout.write(f"VAPID_SUBJECT={subject}")
