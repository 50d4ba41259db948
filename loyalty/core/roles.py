"""Staff roles as auth groups, kept in sync by data migrations.

Each app that adds models adds a data migration calling ``sync_roles`` so the groups
get the permissions of the new models. Permissions are matched by app label and action.
"""

from __future__ import annotations

ACTIONS = ("add", "change", "delete", "view")

# role -> {rule: actions}. A rule is an app label (every model of the app), "app_label.model" (one
# model) or "*" (every loyalty app); a role holds the union of what its rules give. Actions are the
# first word of permission codenames: add, change, delete, view, and the custom ones (adjust_points,
# manual_tier). What each role may then do on each admin screen is docs/permissions.md, checked
# screen by screen by tests/core/test_permissions.py.
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    # designs the program: earning and event rules, tiers, segments, offers, campaigns
    "Marketing": {
        "activity.earningrule": ACTIONS,
        "activity.eventrule": ACTIONS,
        "activity.eventtype": ACTIONS,
        "activity.memberevent": ("view",),
        "activity.staffjob": ("view", "runprogram", "importbalances"),
        "tiers.tier": ACTIONS,
        "tiers.tierthreshold": ACTIONS,
        "tiers.tierperk": ACTIONS,
        "tiers.tierpolicy": ACTIONS,
        "tiers.membertier": ("view",),
        "tiers.tierchange": ("view",),
        "ledger": ("view",),
        "ledger.program": ("view", "change"),
        "segments": ACTIONS,
        "offers": ACTIONS,
        "campaigns": (*ACTIONS, "launch"),  # launch: launch, schedule, finish, cancel campaigns
        "engagement": ACTIONS,
        "messaging": ("view",),
        "messaging.content": ACTIONS,
        "messaging.messagingpolicy": ACTIONS,
        "members.member": ("view",),
        "partners.partner": ("view",),
        "dashboards.dashboard": ("dashboards",),
    },
    # serves members: their profile and status, point adjustments, tiers set by hand
    "Support": {
        "members": ("add", "change", "view"),
        "ledger": ("view", "adjust"),
        "tiers": ("view",),
        "tiers.membertier": ("view", "manual"),
        "activity": ("view",),
        "activity.staffjob": ("view", "runpoints", "importbalances"),
        "partners.partner": ("view",),
        "partners.partnermember": ("view",),
        "segments": ("view",),
        "offers": ("view",),
        "engagement": ("view",),
        "campaigns": ("view",),
        "messaging": ("view",),
        "messaging.contactpreference": ("view", "change"),
        "dashboards.dashboard": ("dashboards_health",),
    },
    # reads everything of the loyalty apps, changes nothing
    "Analyst": {
        "*": ("view", "dashboards"),
    },
}

LOYALTY_APPS = (
    "core",
    "members",
    "ledger",
    "tiers",
    "partners",
    "activity",
    "segments",
    "offers",
    "campaigns",
    "messaging",
    "engagement",
    "dashboards",
)


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
        perms = Permission.objects.filter(content_type__app_label__in=LOYALTY_APPS).select_related("content_type")
        for perm in perms:
            action = perm.codename.split("_", 1)[0]
            allowed = role_actions(rules, perm.content_type.app_label, perm.content_type.model)
            if action in allowed or perm.codename in allowed:  # a rule may also name one codename
                wanted.append(perm)
        group.permissions.set(wanted)


def role_actions(rules: dict[str, tuple[str, ...]], app_label: str, model: str) -> set[str]:
    """The actions ``rules`` give on one model (``model`` in lower case)."""
    actions: set[str] = set()
    for rule in ("*", app_label, f"{app_label}.{model}"):
        if rule == "*" and app_label not in LOYALTY_APPS:
            continue
        actions.update(rules.get(rule, ()))
    return actions
