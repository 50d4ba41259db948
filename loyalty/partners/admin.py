from django.contrib import admin

from loyalty.partners.models import Partner


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "earn_multiplier", "cost_per_point")
    list_filter = ("kind", "status")
    search_fields = ("name",)
