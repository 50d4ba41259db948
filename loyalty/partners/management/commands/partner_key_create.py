"""partner_key_create "<partner name>" [--scope read --scope write] [--expires-days N]

Creates the partner if missing and prints the raw key on the last line (shown only once)."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from loyalty.core.errors import ApplicationError
from loyalty.partners import services


class Command(BaseCommand):
    help = "Create an API key for a partner (creating the partner if missing); prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("partner_name")
        parser.add_argument("--scope", action="append", choices=["read", "write"], dest="scopes")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, partner_name, scopes, expires_days, **options):
        try:
            partner, created, raw = services.partner_key_create(
                partner_name=partner_name,
                scopes=scopes or ["read", "write"],
                expires_in=dt.timedelta(days=expires_days) if expires_days else None,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc
        self.stdout.write(
            f"{'Created' if created else 'Found'} partner '{partner.name}' (id {partner.pk}); scopes: {', '.join(scopes or ['read', 'write'])}"
        )
        self.stdout.write("API key (shown only once; send it as 'Authorization: Api-Key <key>'):")
        self.stdout.write(raw)
