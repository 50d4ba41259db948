"""Offers are configuration read by every purchase and every ranking: changes to an offer or its
eligibility renew the stamp ``loyalty.core.config`` caches them under. The offer's counters
(``redemptions_count``, ``points_issued``) change with purchases and are left out of the UPDATE
trigger's column list, so spending a budget does not empty the cache; every other column is in it
(tests/offers/test_eligibility.py checks that a new column cannot be forgotten)."""

from django.db import migrations


# Per table: (forward, reverse) statements per database, kept verbatim.
def _triggers(statements):
    def run(direction):
        def apply(apps, schema_editor):
            vendor = schema_editor.connection.vendor
            if vendor not in statements:
                raise NotImplementedError(f"No configuration stamp triggers for {vendor}")
            for statement in statements[vendor][direction]:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(0), run(1))


OFFERS_OFFER = {'postgresql': (['CREATE TRIGGER offers_offer_config_stamp_insert AFTER INSERT ON offers_offer FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_config_stamp_update AFTER UPDATE OF program_id, name, description, image, status, priority, condition_kind, condition_min_spend, condition_categories, condition_skus, condition_count, condition_window_days, condition_days_of_week, condition_channels, benefit_kind, benefit_multiplier, benefit_points, benefit_value, benefit_sku, benefit_reward_id, '
                 'scope_categories, scope_skus, coupon_valid_days, valid_from, valid_until, requires_activation, max_redemptions, max_per_member, points_budget, source, external_id, created_by_id, created_at, updated_at ON offers_offer FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_config_stamp_delete AFTER DELETE ON offers_offer FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_config_stamp_insert ON offers_offer', 'DROP TRIGGER IF EXISTS offers_offer_config_stamp_update ON offers_offer', 'DROP TRIGGER IF EXISTS offers_offer_config_stamp_delete ON offers_offer']),
 'sqlite': (['CREATE TRIGGER offers_offer_config_stamp_insert AFTER INSERT ON offers_offer FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_config_stamp_update AFTER UPDATE OF program_id, name, description, image, status, priority, condition_kind, condition_min_spend, condition_categories, condition_skus, condition_count, condition_window_days, condition_days_of_week, condition_channels, benefit_kind, benefit_multiplier, benefit_points, benefit_value, benefit_sku, benefit_reward_id, '
             'scope_categories, scope_skus, coupon_valid_days, valid_from, valid_until, requires_activation, max_redemptions, max_per_member, points_budget, source, external_id, created_by_id, created_at, updated_at ON offers_offer FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_config_stamp_delete AFTER DELETE ON offers_offer FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_config_stamp_delete'])}

OFFERS_OFFER_SEGMENTS_INCLUDE = {'postgresql': (['CREATE TRIGGER offers_offer_segments_include_config_stamp_insert AFTER INSERT ON offers_offer_segments_include FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_segments_include_config_stamp_update AFTER UPDATE ON offers_offer_segments_include FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_segments_include_config_stamp_delete AFTER DELETE ON offers_offer_segments_include FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_insert ON offers_offer_segments_include', 'DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_update ON offers_offer_segments_include', 'DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_delete ON offers_offer_segments_include']),
 'sqlite': (['CREATE TRIGGER offers_offer_segments_include_config_stamp_insert AFTER INSERT ON offers_offer_segments_include FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_segments_include_config_stamp_update AFTER UPDATE ON offers_offer_segments_include FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_segments_include_config_stamp_delete AFTER DELETE ON offers_offer_segments_include FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_segments_include_config_stamp_delete'])}

OFFERS_OFFER_SEGMENTS_EXCLUDE = {'postgresql': (['CREATE TRIGGER offers_offer_segments_exclude_config_stamp_insert AFTER INSERT ON offers_offer_segments_exclude FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_segments_exclude_config_stamp_update AFTER UPDATE ON offers_offer_segments_exclude FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_segments_exclude_config_stamp_delete AFTER DELETE ON offers_offer_segments_exclude FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_insert ON offers_offer_segments_exclude', 'DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_update ON offers_offer_segments_exclude', 'DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_delete ON offers_offer_segments_exclude']),
 'sqlite': (['CREATE TRIGGER offers_offer_segments_exclude_config_stamp_insert AFTER INSERT ON offers_offer_segments_exclude FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_segments_exclude_config_stamp_update AFTER UPDATE ON offers_offer_segments_exclude FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_segments_exclude_config_stamp_delete AFTER DELETE ON offers_offer_segments_exclude FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_segments_exclude_config_stamp_delete'])}

OFFERS_OFFER_TIERS = {'postgresql': (['CREATE TRIGGER offers_offer_tiers_config_stamp_insert AFTER INSERT ON offers_offer_tiers FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_tiers_config_stamp_update AFTER UPDATE ON offers_offer_tiers FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_tiers_config_stamp_delete AFTER DELETE ON offers_offer_tiers FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_insert ON offers_offer_tiers', 'DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_update ON offers_offer_tiers', 'DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_delete ON offers_offer_tiers']),
 'sqlite': (['CREATE TRIGGER offers_offer_tiers_config_stamp_insert AFTER INSERT ON offers_offer_tiers FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_tiers_config_stamp_update AFTER UPDATE ON offers_offer_tiers FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_tiers_config_stamp_delete AFTER DELETE ON offers_offer_tiers FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_tiers_config_stamp_delete'])}

OFFERS_OFFER_PARTNERS = {'postgresql': (['CREATE TRIGGER offers_offer_partners_config_stamp_insert AFTER INSERT ON offers_offer_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_partners_config_stamp_update AFTER UPDATE ON offers_offer_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_partners_config_stamp_delete AFTER DELETE ON offers_offer_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_insert ON offers_offer_partners', 'DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_update ON offers_offer_partners', 'DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_delete ON offers_offer_partners']),
 'sqlite': (['CREATE TRIGGER offers_offer_partners_config_stamp_insert AFTER INSERT ON offers_offer_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_partners_config_stamp_update AFTER UPDATE ON offers_offer_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_partners_config_stamp_delete AFTER DELETE ON offers_offer_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_partners_config_stamp_delete'])}

OFFERS_OFFER_SCOPE_PARTNERS = {'postgresql': (['CREATE TRIGGER offers_offer_scope_partners_config_stamp_insert AFTER INSERT ON offers_offer_scope_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_scope_partners_config_stamp_update AFTER UPDATE ON offers_offer_scope_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()',
                 'CREATE TRIGGER offers_offer_scope_partners_config_stamp_delete AFTER DELETE ON offers_offer_scope_partners FOR EACH ROW EXECUTE FUNCTION core_config_stamp_renew()'],
                ['DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_insert ON offers_offer_scope_partners', 'DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_update ON offers_offer_scope_partners', 'DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_delete ON offers_offer_scope_partners']),
 'sqlite': (['CREATE TRIGGER offers_offer_scope_partners_config_stamp_insert AFTER INSERT ON offers_offer_scope_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_scope_partners_config_stamp_update AFTER UPDATE ON offers_offer_scope_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END',
             'CREATE TRIGGER offers_offer_scope_partners_config_stamp_delete AFTER DELETE ON offers_offer_scope_partners FOR EACH ROW BEGIN INSERT OR REPLACE INTO core_configstamp (id, stamp) VALUES (1, random()); END'],
            ['DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_insert', 'DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_update', 'DROP TRIGGER IF EXISTS offers_offer_scope_partners_config_stamp_delete'])}


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp"), ("offers", "0002_staff_roles")]

    operations = [
        _triggers(OFFERS_OFFER),
        _triggers(OFFERS_OFFER_SEGMENTS_INCLUDE),
        _triggers(OFFERS_OFFER_SEGMENTS_EXCLUDE),
        _triggers(OFFERS_OFFER_TIERS),
        _triggers(OFFERS_OFFER_PARTNERS),
        _triggers(OFFERS_OFFER_SCOPE_PARTNERS),
    ]
