"""PostgreSQL functions for the two writes of every purchase, each one call instead of several
statements (on a small CPU a statement costs more in the driver and the ORM than in the server).
Each is called from one place; on other databases that place writes the same rows through the
ORM. The rules (which bucket, how much debt is paid, when a lot expires, what a line is worth)
stay in Python: the functions only write what they are given.

``ledger_credit`` (from ``loyalty.ledger.services.points._credit_write``): the ledger
transaction, its lot, its two entries, the account's figures and the purchase's points. Returns
one row (transaction_id, lot_id; lot_id NULL when the points all paid debt), or no row and writes
nothing when a transaction with this idempotency key exists.

``ledger_purchase_insert`` (from ``loyalty.ledger.services.purchases._purchase_write``): a
purchase and its lines (given as arrays, in order). Returns the purchase's id, or NULL and
writes nothing when the purchase's external id exists (a repeat, even one racing in another
transaction, leaves the caller's transaction usable: no savepoint)."""

from django.db import migrations

CREATE = """
CREATE FUNCTION ledger_credit(
    p_program_id bigint, p_kind varchar, p_reason varchar, p_idempotency_key varchar, p_explanation jsonb,
    p_actor_id integer, p_actor_label varchar, p_purchase_id bigint, p_partner_id bigint,
    p_created_at timestamptz, p_account_id bigint, p_source_account_id bigint, p_entry_kind varchar,
    p_points bigint, p_lot_points bigint, p_lot_pending boolean, p_lot_available_at timestamptz,
    p_lot_expires_at timestamptz, p_add_available bigint, p_add_pending bigint, p_add_debt bigint,
    p_add_earned bigint, p_last_activity_at timestamptz
) RETURNS TABLE (transaction_id bigint, lot_id bigint) LANGUAGE plpgsql AS $$
DECLARE
    v_transaction_id bigint;
    v_lot_id bigint;
BEGIN
    INSERT INTO ledger_ledgertransaction AS t
        (program_id, kind, reason, idempotency_key, explanation, actor_id, actor_label, purchase_id, partner_id,
         created_at)
    VALUES (p_program_id, p_kind, p_reason, p_idempotency_key, p_explanation, p_actor_id, p_actor_label,
            p_purchase_id, p_partner_id, p_created_at)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING t.id INTO v_transaction_id;
    IF v_transaction_id IS NULL THEN
        RETURN;  -- the idempotency key was used: nothing is written
    END IF;
    IF p_lot_points > 0 THEN
        INSERT INTO ledger_lot AS l
            (account_id, transaction_id, points, remaining, is_pending, available_at, expires_at, created_at)
        VALUES (p_account_id, v_transaction_id, p_lot_points, p_lot_points, p_lot_pending, p_lot_available_at,
                p_lot_expires_at, p_created_at)
        RETURNING l.id INTO v_lot_id;
    END IF;
    INSERT INTO ledger_entry (transaction_id, account_id, lot_id, kind, points, created_at)
    VALUES (v_transaction_id, p_account_id, v_lot_id, p_entry_kind, p_points, p_created_at),
           (v_transaction_id, p_source_account_id, NULL, p_entry_kind, -p_points, p_created_at);
    UPDATE ledger_account AS a
    SET available = a.available + p_add_available,
        pending = a.pending + p_add_pending,
        debt = a.debt + p_add_debt,
        earned = a.earned + p_add_earned,
        last_activity_at = COALESCE(p_last_activity_at, a.last_activity_at)
    WHERE a.id = p_account_id;
    IF p_purchase_id IS NOT NULL THEN
        UPDATE ledger_purchase AS p SET points_earned = p.points_earned + p_points WHERE p.id = p_purchase_id;
    END IF;
    transaction_id := v_transaction_id;
    lot_id := v_lot_id;
    RETURN NEXT;
END
$$
"""

CREATE_PURCHASE_INSERT = """
CREATE FUNCTION ledger_purchase_insert(
    p_program_id bigint, p_member_id bigint, p_partner_id bigint, p_external_id varchar, p_store_code varchar,
    p_occurred_at timestamptz, p_currency varchar, p_total numeric, p_tax numeric, p_discount numeric,
    p_eligible_amount numeric, p_returned_amount numeric, p_points_earned bigint, p_created_at timestamptz,
    p_skus varchar[], p_categories varchar[], p_quantities numeric[], p_unit_prices numeric[], p_amounts numeric[],
    p_discounts numeric[], p_returned_quantities numeric[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_purchase_id bigint;
BEGIN
    INSERT INTO ledger_purchase AS p
        (program_id, member_id, partner_id, external_id, store_code, occurred_at, currency, total, tax, discount,
         eligible_amount, returned_amount, points_earned, created_at)
    VALUES (p_program_id, p_member_id, p_partner_id, p_external_id, p_store_code, p_occurred_at, p_currency, p_total,
            p_tax, p_discount, p_eligible_amount, p_returned_amount, p_points_earned, p_created_at)
    ON CONFLICT DO NOTHING
    RETURNING p.id INTO v_purchase_id;
    IF v_purchase_id IS NULL THEN
        RETURN NULL;  -- the external id was used: nothing is written
    END IF;
    INSERT INTO ledger_purchaseline
        (purchase_id, sku, category, quantity, unit_price, amount, discount, returned_quantity)
    SELECT v_purchase_id, l.sku, l.category, l.quantity, l.unit_price, l.amount, l.discount, l.returned_quantity
    FROM unnest(p_skus, p_categories, p_quantities, p_unit_prices, p_amounts, p_discounts, p_returned_quantities)
        WITH ORDINALITY AS l(sku, category, quantity, unit_price, amount, discount, returned_quantity, n)
    ORDER BY l.n;
    RETURN v_purchase_id;
END
$$
"""

DROP = """
DROP FUNCTION IF EXISTS ledger_credit(
    bigint, varchar, varchar, varchar, jsonb, integer, varchar, bigint, bigint, timestamptz, bigint, bigint, varchar,
    bigint, bigint, boolean, timestamptz, timestamptz, bigint, bigint, bigint, bigint, timestamptz
)
"""

DROP_PURCHASE_INSERT = """
DROP FUNCTION IF EXISTS ledger_purchase_insert(
    bigint, bigint, bigint, varchar, varchar, timestamptz, varchar, numeric, numeric, numeric, numeric, numeric, bigint,
    timestamptz, varchar[], varchar[], numeric[], numeric[], numeric[], numeric[], numeric[]
)
"""


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        schema_editor.execute(CREATE_PURCHASE_INSERT)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)
        schema_editor.execute(DROP_PURCHASE_INSERT)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0007_lot_pending_due_per_account")]

    operations = [migrations.RunPython(create, drop)]
