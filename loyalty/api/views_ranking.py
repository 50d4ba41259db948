"""Partner API: the member's personalized offers and rewards (``offers_for_member``), the same
list in the same order as the portal and campaign messages show, limited to what applies at the
calling partner."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.api.views import COMMON_ERRORS, errors, query_params_known, readable_member, request_partner
from offers.selectors.ranking import offers_for_member

LIMIT_MAX = 100


class OffersQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=LIMIT_MAX)


class RankedItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 is shown first")
    kind = serializers.ChoiceField(choices=["offer", "reward"])
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    gives = serializers.CharField(help_text="What it gives, in plain words")
    score = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.CharField(), help_text="Why it ranks here, in plain words")
    needs_activation = serializers.BooleanField(help_text="The member must activate the offer before it applies")
    activated = serializers.BooleanField()
    points_cost = serializers.IntegerField(allow_null=True, help_text="Rewards: points it costs")
    points_missing = serializers.IntegerField(allow_null=True, help_text="Rewards: points still missing")
    valid_until = serializers.DateTimeField(allow_null=True)


class MemberOffersSerializer(serializers.Serializer):
    member_number = serializers.CharField()
    items = RankedItemSerializer(many=True)


class MemberOffersView(APIView):
    @extend_schema(
        operation_id="members_offers",
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX},
                required=False,
                description=f"At most this many items (1-{LIMIT_MAX})",
            )
        ],
        responses={200: MemberOffersSerializer, **errors(*COMMON_ERRORS, 404)},
        description=(
            "The offers and rewards the member may use at this partner now, best first, with a score and the "
            "reasons in plain words. Members without personalization consent get a ranking without their "
            "purchase history. 404 `member_not_found` when this partner may not read the member."
        ),
    )
    def get(self, request, member_number: str):
        query_params_known(request, {"limit"})
        query = OffersQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        member = readable_member(request, member_number)
        items = offers_for_member(
            member=member, channel="api", partner=request_partner(request), limit=query.validated_data.get("limit")
        )
        body = {"member_number": member.member_number, "items": [RankedItemSerializer(i).data for i in items]}
        return Response(body)
