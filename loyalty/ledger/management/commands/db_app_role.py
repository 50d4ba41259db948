import os

from django.core.management.base import BaseCommand, CommandError

from loyalty.core.errors import ApplicationError
from loyalty.ledger.services.db_role import db_app_role_grant


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL role the application runs as: rows only, no schema changes, no "
        "TRUNCATE, no UPDATE/DELETE of ledger entries and transactions. Run as the tables' owner after "
        "`migrate`; then point the app's DATABASE_URL at this role."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="role name, e.g. loyalty_app")
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="environment variable holding the role's password (kept off the command line)",
        )

    def handle(self, *args, name, password_env=None, **options):
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"{password_env} is empty or not set")
        try:
            statements = db_app_role_grant(name=name, password=password)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for statement in statements:
            self.stdout.write(statement)
        self.stdout.write(self.style.SUCCESS(f"Role {name} is ready: connect the application as it."))
