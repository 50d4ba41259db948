from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.core.admin import DeleteEachAdminMixin, ReadOnlyAdminMixin
from loyalty.core.errors import ApplicationError
from loyalty.messaging import selectors, services
from loyalty.messaging.models import ContactPreference, Content, Message, MessagingPolicy
from members import selectors as member_selectors


class ContentForm(forms.ModelForm):
    link_url = forms.URLField(max_length=500, required=False, assume_scheme="https", label="Link URL")

    class Meta:
        model = Content
        fields = (
            "name",
            "purpose",
            "is_active",
            "subject",
            "body",
            "link_text",
            "link_url",
            "offer",
            "reward",
            "banner",
            "trigger",
            "channels",
        )

    def clean(self):
        cleaned = super().clean()
        try:
            services.content_validate(values=cleaned)
        except ApplicationError as exc:
            for field, messages in (exc.fields or {}).items():
                target = field if field in self.fields else None
                for message in messages:
                    self.add_error(target, message)
        return cleaned


class PreviewForm(forms.Form):
    member_number = forms.CharField(label="Member number", max_length=20)


@admin.register(Content)
class ContentAdmin(DeleteEachAdminMixin, admin.ModelAdmin):
    form = ContentForm
    list_display = ("name", "purpose", "trigger", "subject", "is_active", "updated_at", "preview_link")
    list_filter = ("purpose", "trigger", "is_active")
    search_fields = ("name", "subject")
    autocomplete_fields = ()
    raw_id_fields = ("offer", "reward")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "purpose", "is_active")}),
        ("Wording (one source for every channel)", {"fields": ("subject", "body", "link_text", "link_url")}),
        ("What it promotes (marketing only)", {"fields": ("offer", "reward", "banner")}),
        ("Transactional", {"fields": ("trigger", "channels")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Preview")
    def preview_link(self, obj):
        return format_html('<a href="{}">preview</a>', reverse("admin:messaging_content_preview", args=[obj.pk]))

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="messaging_content_preview",
            )
        ]
        return own + super().get_urls()

    def preview_view(self, request, object_id):
        content = self.get_object(request, object_id)
        if content is None or not self.has_view_permission(request, content):
            raise PermissionDenied
        form = PreviewForm(request.GET or None)
        rendered = None
        if form.is_valid():
            try:
                member = member_selectors.member_get_by_number(member_number=form.cleaned_data["member_number"])
                rendered = selectors.content_preview(content=content, member=member)
            except ApplicationError as exc:
                form.add_error("member_number", exc.message)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {content.name}",
            "opts": self.opts,
            "original": content,
            "form": form,
            "rendered": rendered,
        }
        return TemplateResponse(request, "admin/messaging/content/preview.html", context)

    def save_model(self, request, obj, form, change):
        services.content_save(content=obj, actor=request.user, created=not change)

    def delete_model(self, request, obj):
        services.content_delete(content=obj, actor=request.user)


@admin.register(MessagingPolicy)
class MessagingPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "program",
        "time_zone",
        "quiet_start",
        "quiet_end",
        "email_weekly_cap",
        "sms_weekly_cap",
        "expiring_days",
    )
    readonly_fields = ("updated_at",)

    def save_model(self, request, obj, form, change):
        services.policy_save(policy=obj, actor=request.user, created=not change)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ContactPreference)
class ContactPreferenceAdmin(admin.ModelAdmin):
    list_display = ("member", "time_zone", "quiet_start", "quiet_end", "email_enabled", "sms_enabled", "push_enabled")
    search_fields = ("=member__member_number",)
    raw_id_fields = ("member",)
    readonly_fields = ("member", "updated_at")
    fields = (
        "member",
        "time_zone",
        "quiet_start",
        "quiet_end",
        "email_enabled",
        "sms_enabled",
        "push_enabled",
        "inbox_enabled",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False  # a member's row comes with their first message or from the portal

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.content.PREFERENCE_FIELDS}
        services.preference_set(member=obj.member, actor=request.user, **values)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "member",
        "channel",
        "purpose",
        "status",
        "reason",
        "content",
        "source",
        "sent_at",
        "opened_at",
        "clicked_at",
    )
    list_filter = ("status", "reason", "channel", "purpose", "source")
    search_fields = ("=member__member_number", "=send_key")
    list_select_related = ("member", "content")
    date_hierarchy = "created_at"
    show_full_result_count = False
