from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.db import transaction

from loyalty.core import staff_accounts
from loyalty.core.models import AuditEvent


class DeleteEachAdminMixin:
    """The list's bulk "delete selected" goes through ``delete_model`` row by row, so every delete
    takes the screen's service (audit, soft delete) rather than one raw queryset delete."""

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdminMixin:
    """Staff may look, never add, change or delete (ledgers, logs, derived data)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_repr", "reason")
    list_filter = ("action", "target_type")
    search_fields = ("target_id", "target_repr", "actor_label", "reason")
    date_hierarchy = "created_at"


# -- staff accounts and role groups: every change through loyalty.core.staff_accounts (audited) ----


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit=True):
        user = super().save(commit=False)
        user.password_set_in_admin = True  # saved by StaffUserAdmin.log_change, through the service
        return user


class StaffUserAdmin(DeleteEachAdminMixin, UserAdmin):
    change_password_form = AuditedPasswordChangeForm

    def save_model(self, request, obj, form, change):
        pass  # saved with its groups and permissions in save_related, by the service

    def save_related(self, request, form, formsets, change):
        staff_accounts.staff_user_save(
            user=form.instance,
            actor=request.user,
            created=not change,
            groups=form.cleaned_data.get("groups", None),
            user_permissions=form.cleaned_data.get("user_permissions", None),
            reason="admin",
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        if getattr(obj, "password_set_in_admin", False):
            staff_accounts.staff_user_save(
                user=obj, actor=request.user, created=False, reason="password set in the admin"
            )
        return super().log_change(request, obj, message)

    def delete_model(self, request, obj):
        staff_accounts.staff_user_delete(user=obj, actor=request.user, reason="admin")


class RoleGroupAdmin(DeleteEachAdminMixin, GroupAdmin):
    def save_model(self, request, obj, form, change):
        pass  # saved with its permissions in save_related, by the service

    def save_related(self, request, form, formsets, change):
        staff_accounts.staff_group_save(
            group=form.instance,
            actor=request.user,
            created=not change,
            permissions=form.cleaned_data.get("permissions"),
            reason="admin",
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        staff_accounts.staff_group_delete(group=obj, actor=request.user, reason="admin")


for model, model_admin in ((get_user_model(), StaffUserAdmin), (Group, RoleGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


# -- branding: staff see the product's name, not "Django administration" -------------------------
admin.site.site_header = "Loyalty platform"
admin.site.site_title = "Loyalty platform"
admin.site.index_title = "Run the loyalty program"
