"""Staff roles as auth groups, kept in sync by data migrations.

Each app that adds models adds a data migration calling ``sync_roles`` so the groups
get the permissions of the new models. Permissions are matched by app label and action.
"""

from __future__ import annotations

ACTIONS = ("add", "change", "delete", "view")

# role -> {app_label: actions}; "*" means every loyalty app.
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "Marketing": {
        "segments": ACTIONS,
        "offers": ACTIONS,
        "members": ("view",),
        "tiers": ("view",),
        "ledger": ("view",),
        "activity": ("view",),
        "partners": ("view",),
    },
    "Support": {
        "members": ("add", "change", "view"),
        "ledger": ("view", "adjust"),
        "tiers": ("view", "change", "manual"),
        "activity": ("view",),
        "partners": ("view",),
        "segments": ("view",),
        "offers": ("view",),
    },
    "Analyst": {
        "*": ("view", "dashboards"),
    },
}

LOYALTY_APPS = ("core", "members", "ledger", "tiers", "partners", "activity", "segments", "offers")


def _ensure_permissions(apps) -> None:
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def sync_roles(apps, schema_editor=None) -> None:
    """Create the role groups and give them the permissions their rules name."""
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, rules in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for app_label, actions in rules.items():
            labels = LOYALTY_APPS if app_label == "*" else (app_label,)
            for perm in Permission.objects.filter(content_type__app_label__in=labels):
                action = perm.codename.split("_", 1)[0]
                if action in actions:
                    wanted.append(perm)
        group.permissions.set(wanted)
