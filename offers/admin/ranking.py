"""Staff screens of the personalized ranking: the batch's stored top N per member, and for one
member the whole ranking with each item's score, the points each factor added and the reasons,
beside what the member is not eligible for and why (eligibility's stable code)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from loyalty.core.admin import ReadOnlyAdminMixin
from members.models import Member
from offers.models import MemberOfferRank
from offers.ranking import FACTORS
from offers.selectors.ranking import offers_ranking_explained


@admin.register(MemberOfferRank)
class MemberOfferRankAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("member_number", "rank", "kind", "item", "score", "computed_at", "why_link")
    list_filter = ("kind",)
    search_fields = ("=member__member_number",)
    list_select_related = ("member", "offer", "reward")
    show_full_result_count = False  # a million members: no second COUNT(*)

    def get_urls(self):
        why = path(
            "member/<int:member_id>/why/", self.admin_site.admin_view(self.why_view), name="offers_member_ranking"
        )
        return [why, *super().get_urls()]

    @admin.display(description="Member", ordering="member_id")
    def member_number(self, obj):
        return obj.member.member_number

    @admin.display(description="Offer or reward")
    def item(self, obj):
        return str(obj.offer or obj.reward)

    @admin.display(description="Why")
    def why_link(self, obj):
        return format_html('<a href="{}">Why</a>', reverse("admin:offers_member_ranking", args=[obj.member_id]))

    def why_view(self, request, member_id: int):
        if not (self.has_view_permission(request) and request.user.has_perm("members.view_member")):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        ranking = offers_ranking_explained(member=member)
        stored = list(
            MemberOfferRank.objects.filter(member_id=member.pk).select_related("offer", "reward").order_by("rank")
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Why these offers: member {member.member_number}",
            "opts": self.model._meta,
            "member": member,
            "ranking": ranking,
            "factor_names": [name for name, _ in FACTORS],
            "stored": stored,
        }
        return TemplateResponse(request, "admin/offers/member_ranking.html", context)
