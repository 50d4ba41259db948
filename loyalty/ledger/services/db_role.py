"""The PostgreSQL role the application runs as in production: it reads and writes rows, and
nothing more. Migrations run as the owner of the tables (``DATABASE_URL`` of the deploy step);
gunicorn and Celery connect as this role.

What the role cannot do: change the schema (it owns nothing and may not create in the schema),
TRUNCATE any table, UPDATE or DELETE ledger entries and transactions (they are append-only: the
ledger's triggers refuse that to the owner too, this refuses it before any trigger runs).
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection, transaction
from psycopg import sql

from loyalty.core.errors import ValidationFailed

APPEND_ONLY_MODELS = ("ledger.Entry", "ledger.LedgerTransaction")


def _append_only_tables() -> list[str]:
    return [apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS]


def db_app_role_grant(*, name: str, password: str | None = None, schema: str = "public") -> list[str]:
    """Create the role ``name`` (LOGIN) or bring an existing one up to date; run as the owner of the
    tables, after migrations (again after migrations that add tables). Returns the statements run."""
    if connection.vendor != "postgresql":
        raise ValidationFailed("An application role is a PostgreSQL matter", code="needs_postgresql")
    if not name or not name.replace("_", "").isalnum():
        raise ValidationFailed("A role name is letters, digits and underscores", code="invalid_role_name")
    role, nsp = sql.Identifier(name), sql.Identifier(schema)
    database = sql.Identifier(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        exists = cursor.fetchone() is not None

    def role_statement(password_sql: sql.Composable) -> sql.Composable:
        login = sql.SQL("LOGIN PASSWORD {}").format(password_sql) if password else sql.SQL("LOGIN")
        return sql.SQL("{} ROLE {} WITH {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(
            sql.SQL("ALTER" if exists else "CREATE"), role, login
        )

    statements = [
        role_statement(sql.Literal(password)),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role),
        sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(database, role),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(nsp, role),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(nsp, role),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(nsp, role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(nsp, role),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(nsp, role),
        *(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), role)
            for table in _append_only_tables()
        ),
        # tables and sequences this owner creates later (migrations) are usable without a re-run
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}").format(
            nsp, role
        ),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(nsp, role),
    ]
    shown = [role_statement(sql.SQL("'***'")), *statements[1:]]  # the password is not repeated
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.as_string(cursor.connection))
        return [statement.as_string(cursor.connection) for statement in shown]
