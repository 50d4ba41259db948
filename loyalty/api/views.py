"""Partner API v1: thin views that parse, call one workflow or selector, and render."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import pagination, serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.activity import services as activity
from loyalty.api import serializers as s
from loyalty.api.errors import PROBLEM, application_problem
from loyalty.api.schema import KEEP_HOURS, NOT_BLANK
from loyalty.core.errors import ApplicationError, Conflict, NotFound
from loyalty.core.idempotency import idempotent
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Entry, EntryKind, Redemption
from loyalty.partners import services as partner_services
from loyalty.partners.models import WebhookEndpoint
from loyalty.partners.selectors import partner_member_access, partner_members_visible
from loyalty.tiers.selectors import member_tier, tier_progress
from members.models import EnrollmentSource, Member
from members.selectors import member_get_by_number


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loyalty.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Api-Key <key>`"}


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},  # longer or empty: 422 invalid_idempotency_key
    OpenApiParameter.HEADER,
    required=False,
    description=(
        f"Repeat-safe key: the first response is stored {KEEP_HOURS} h and returned again, byte for byte and with "
        "`Idempotent-Replayed: true`, for the same body; a request that died leaves the key free for its retry."
    ),
)
REPLAYED_HEADER = "Idempotent-Replayed"


def errors(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    """Error answers as documented: ``application/problem+json``, the media type they are sent with."""
    titles = {
        400: "Malformed or invalid request",
        401: "No or bad API key",
        403: "Key lacks the scope",
        404: "Not found (or not linked to this partner)",
        409: "Conflict (duplicate_external_id, insufficient_points, idempotency_in_progress, purchase_already_returned)",
        413: "Body over the size limit (request_too_large)",
        422: "Rule violation (e.g. return_exceeds_purchase, idempotency_key_reused)",
        429: "Throttled; see Retry-After",
    }
    return {(code, PROBLEM): OpenApiResponse(s.ProblemSerializer, description=titles[code]) for code in codes}


COMMON_ERRORS = (400, 401, 403, 413, 429)


def query_params_known(request, allowed: set[str] | frozenset[str]) -> None:
    """400 ``invalid_request`` for a query parameter the operation does not document, or one given
    twice: a misspelt filter must not quietly answer unfiltered."""
    errors_by_name = {
        name: ["Unknown query parameter."] if name not in allowed else ["Give this parameter once."]
        for name in request.query_params
        if name not in allowed or len(request.query_params.getlist(name)) > 1
    }
    if errors_by_name:
        raise serializers.ValidationError(errors_by_name)


def request_partner(request):
    return request.user.partner


def readable_member(request, member_number: str) -> Member:
    """A member whose personal data the calling partner may read (``partner_member_access``);
    else 404 exactly like an unknown number."""
    try:
        member = member_get_by_number(member_number=member_number)
    except ApplicationError:
        raise NotFound("No member with this number", code="member_not_found") from None
    if not partner_member_access(partner=request_partner(request), member=member).read:
        raise NotFound("No member with this number", code="member_not_found")
    return member


# What a partner is told when the email of an enrollment is already enrolled: the same problem
# whether or not it may see that member, with nothing about the member (README, Partner API).
EMAIL_UNAVAILABLE = (
    "This email address cannot be enrolled here; an existing member can present their card, "
    "or enroll with another address"
)


class WriteView(APIView):
    """POST handling shared by the write endpoints: validate, then run under the
    Idempotency-Key (when sent) so the first answer, errors included, is the answer."""

    in_serializer: type[serializers.Serializer]

    def handle(self, request, data: dict[str, Any]) -> tuple[int, Any]:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        serializer = self.in_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def run() -> tuple[int, Any]:
            try:
                return self.handle(request, data, **kwargs)
            except ApplicationError as exc:
                return application_problem(exc)

        key = request.headers.get("Idempotency-Key")
        if key is None:
            status_code, body = run()
            return Response(body, status=status_code, content_type=PROBLEM if status_code >= 400 else None)

        def run_rendered() -> tuple[int, bytes]:
            status_code, body = run()
            return status_code, JSONRenderer().render(body)

        answer = idempotent(
            scope=f"partner:{request_partner(request).pk}",
            key=key,
            endpoint=request.path,
            body=request.data,
            run=run_rendered,
        )
        response = HttpResponse(
            answer.content, status=answer.status, content_type=PROBLEM if answer.status >= 400 else "application/json"
        )
        if answer.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


def _member_body(member: Member) -> dict:
    return s.MemberSerializer(member).data


class MembersView(WriteView):
    in_serializer = s.EnrollSerializer

    @extend_schema(
        operation_id="members_lookup",
        parameters=[
            OpenApiParameter(
                "email",
                {"type": "string", "minLength": 1, "pattern": NOT_BLANK},
                required=True,
                description="The email address, compared without case (an unknown one answers [])",
            )
        ],
        responses={200: s.MemberSerializer(many=True), **errors(*COMMON_ERRORS)},
        description="Look up members linked to this partner by email.",
    )
    def get(self, request):
        query_params_known(request, {"email"})
        email = request.query_params.get("email", "").strip()
        if "\x00" in email:  # PostgreSQL stores no NUL: refuse it as the schema's pattern does
            raise serializers.ValidationError({"email": ["Null characters are not allowed."]})
        if not email:
            return Response(
                {
                    "type": "https://loyalty.example/problems/email_required",
                    "title": "Invalid request",
                    "status": 400,
                    "detail": "Give an email address: ?email=",
                    "code": "email_required",
                },
                status=400,
                content_type=PROBLEM,
            )
        members = partner_members_visible(
            partner=request_partner(request), members=Member.objects.filter(email__iexact=email)
        )
        return Response(s.MemberSerializer(members, many=True).data)

    @extend_schema(
        operation_id="members_enroll",
        request=s.EnrollSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.MemberSerializer, **errors(*COMMON_ERRORS, 409, 422)},
        examples=[
            OpenApiExample(
                "Enroll",
                value={
                    "email": "ann@example.com",
                    "first_name": "Ann",
                    "consents": [{"purpose": "marketing", "channel": "email", "granted": True}],
                },
                request_only=True,
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    def handle(self, request, data):
        consents = [(c["purpose"], c.get("channel", ""), c["granted"]) for c in data.get("consents", [])]
        try:
            member = activity.enrollment_record(
                source=EnrollmentSource.PARTNER,
                partner=request_partner(request),
                consents=consents,
                consent_wording_version=data.get("consent_wording_version", ""),
                email=data.get("email") or None,
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                phone=data.get("phone", ""),
                birth_date=data.get("birth_date"),
                postal_code=data.get("postal_code", ""),
                referral_code=data.get("referral_code", ""),
                referral_channel="api",
            )
        except ApplicationError as exc:
            if exc.code == "email_taken":
                raise Conflict(EMAIL_UNAVAILABLE, code="email_taken") from None
            raise
        return status.HTTP_201_CREATED, _member_body(member)


class MemberDetailView(APIView):
    @extend_schema(operation_id="members_retrieve", responses={200: s.MemberSerializer, **errors(*COMMON_ERRORS, 404)})
    def get(self, request, member_number: str):
        return Response(_member_body(readable_member(request, member_number)))


class BalanceView(APIView):
    @extend_schema(operation_id="members_balance", responses={200: s.BalanceSerializer, **errors(*COMMON_ERRORS, 404)})
    def get(self, request, member_number: str):
        member = readable_member(request, member_number)
        program = ledger_selectors.partner_program(partner=request_partner(request))
        account = ledger_selectors.member_account(member=member, program=program)
        tier = member_tier(member=member, program=program)
        progress = tier_progress(member=member, program=program)
        return Response(
            {
                "member_number": member.member_number,
                "program": program.name,
                "available": account.available if account else 0,
                "pending": account.pending if account else 0,
                "debt": account.debt if account else 0,
                "expiring": ledger_selectors.points_expiring(account=account, within_days=90) if account else [],
                "tier": tier.name if tier else None,
                "tier_progress": _progress_body(progress),
            }
        )


def _progress_body(progress) -> dict:
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "name") and hasattr(value, "rank"):
            return value.name
        return str(value) if value is not None and not isinstance(value, int | str | bool) else value

    return {
        "tier": plain(progress.tier),
        "next_tier": plain(progress.next_tier),
        "to_next": plain(progress.to_next),
        "keep": plain(progress.keep),
        "keep_by": plain(progress.keep_by),
        "next_evaluation": plain(progress.next_evaluation),
        "metrics": {k: plain(v) for k, v in vars(progress.metrics).items()}
        if hasattr(progress.metrics, "__dict__")
        else plain(progress.metrics),
    }


class EntryFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=EntryKind.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "created_after", "created_before"]


class EntryCursor(pagination.CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class EntriesView(ListAPIView):
    serializer_class = s.EntrySerializer
    filterset_class = EntryFilter
    pagination_class = EntryCursor

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Entry.objects.none()
        member = readable_member(self.request, self.kwargs["member_number"])
        return Entry.objects.filter(
            account__member=member, transaction__partner=request_partner(self.request)
        ).select_related("transaction")

    @extend_schema(
        operation_id="members_entries", responses={200: s.EntrySerializer(many=True), **errors(*COMMON_ERRORS, 404)}
    )
    def get(self, request, *args, **kwargs):
        query_params_known(request, {*EntryFilter.base_filters, "cursor", EntryCursor.page_size_query_param})
        return super().get(request, *args, **kwargs)


@extend_schema_view(
    post=extend_schema(
        operation_id="purchases_create",
        request=s.PurchaseInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: s.PurchaseOutSerializer,
            200: OpenApiResponse(s.PurchaseOutSerializer, description="Same external_id and body again"),
            **errors(*COMMON_ERRORS, 404, 409, 422),
        },
        examples=[
            OpenApiExample(
                "Purchase",
                request_only=True,
                value={
                    "member_number": "123456789012",
                    "external_id": "till-7-000123",
                    "occurred_at": "2026-11-20T10:15:00Z",
                    "currency": "USD",
                    "total": "25.00",
                    "tax": "2.08",
                    "discount": "0.00",
                    "store": "S-001",
                    "lines": [
                        {
                            "sku": "4011",
                            "category": "produce",
                            "quantity": "2",
                            "unit_price": "12.50",
                            "amount": "25.00",
                            "discount": "0.00",
                        }
                    ],
                },
            )
        ],
    )
)
class PurchasesView(WriteView):
    in_serializer = s.PurchaseInSerializer

    def handle(self, request, data):
        outcome = activity.purchase_record(
            partner=request_partner(request),
            member_number=data["member_number"],
            external_id=data["external_id"],
            occurred_at=data["occurred_at"],
            lines=[dict(line) for line in data["lines"]],
            program_name=data.get("program"),
            currency=data.get("currency"),
            total=data["total"],
            tax=data["tax"],
            discount=data["discount"],
            store=data["store"],
            check_window=True,
            channel=data["channel"],
            card_fingerprint=data.get("card_fingerprint", ""),
        )
        body = {
            "purchase_id": outcome.purchase.pk,
            "external_id": outcome.purchase.external_id,
            "member_number": data["member_number"],
            "points_earned": outcome.points,
            "points_pending_until": outcome.pending_until.isoformat().replace("+00:00", "Z")
            if outcome.pending_until
            else None,
            "explanation": outcome.explanation,
        }
        return (status.HTTP_201_CREATED if outcome.created else status.HTTP_200_OK), body


@extend_schema_view(
    post=extend_schema(
        operation_id="returns_create",
        request=s.ReturnInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.ReturnOutSerializer, 200: s.ReturnOutSerializer, **errors(*COMMON_ERRORS, 404, 409, 422)},
    )
)
class ReturnsView(WriteView):
    in_serializer = s.ReturnInSerializer

    def handle(self, request, data):
        ret, created = activity.return_record(
            partner=request_partner(request),
            purchase_external_id=data["purchase_external_id"],
            external_id=data["external_id"],
            lines=[dict(line) for line in data["lines"]] if "lines" in data else None,
            amount=data.get("amount"),
            occurred_at=data.get("occurred_at"),
        )
        body = {
            "return_id": ret.pk,
            "external_id": ret.external_id,
            "purchase_external_id": data["purchase_external_id"],
            "amount": str(ret.amount),
            "points_reversed": ret.points_reversed + ret.points_to_debt,
            "points_written_off": ret.points_written_off,
        }
        return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), body


def _redemption_body(redemption: Redemption) -> dict:
    return {
        "id": redemption.pk,
        "external_id": redemption.external_id,
        "member_number": redemption.account.member.member_number,
        "points": redemption.points,
        "status": redemption.status,
        "description": redemption.description,
        "created_at": redemption.created_at.isoformat().replace("+00:00", "Z"),
    }


@extend_schema_view(
    post=extend_schema(
        operation_id="redemptions_create",
        request=s.RedemptionInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: s.RedemptionOutSerializer,
            200: s.RedemptionOutSerializer,
            **errors(*COMMON_ERRORS, 404, 409, 422),
        },
    )
)
class RedemptionsView(WriteView):
    in_serializer = s.RedemptionInSerializer

    def handle(self, request, data):
        redemption, created = activity.redemption_record(
            partner=request_partner(request),
            member_number=data["member_number"],
            points=data["points"],
            external_id=data["external_id"],
            description=data["description"],
            program_name=data.get("program"),
            redemption_code=data.get("redemption_code"),
        )
        return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), _redemption_body(redemption)


class EmptySerializer(serializers.Serializer):
    pass


@extend_schema_view(
    post=extend_schema(
        operation_id="redemptions_cancel",
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: OpenApiResponse(s.RedemptionOutSerializer, description="Cancelled by this request"),
            200: OpenApiResponse(s.RedemptionOutSerializer, description="Already cancelled (a repeat)"),
            **errors(*COMMON_ERRORS, 404, 409),
        },
    )
)
class RedemptionCancelView(WriteView):
    in_serializer = EmptySerializer

    def handle(self, request, data, pk: int):
        redemption, cancelled = activity.redemption_cancel(partner=request_partner(request), redemption_id=pk)
        return (status.HTTP_201_CREATED if cancelled else status.HTTP_200_OK), _redemption_body(redemption)


@extend_schema_view(
    post=extend_schema(
        operation_id="events_create",
        request=s.EventInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.EventOutSerializer, 200: s.EventOutSerializer, **errors(*COMMON_ERRORS, 404, 409, 422)},
    )
)
class EventsView(WriteView):
    in_serializer = s.EventInSerializer

    def handle(self, request, data):
        event, created = activity.event_record(
            partner=request_partner(request),
            member_number=data["member_number"],
            event_type=data["event_type"],
            external_id=data.get("external_id"),
            occurred_at=data.get("occurred_at"),
            community_event_id=data.get("community_event_id"),
        )
        body = {
            "event_id": event.pk,
            "event_type": data["event_type"],
            "member_number": data["member_number"],
            "points": event.points,
            "note": event.note,
        }
        return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), body


def _webhook_body(endpoint: WebhookEndpoint) -> dict:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat().replace("+00:00", "Z"),
    }


class WebhooksView(WriteView):
    in_serializer = s.WebhookInSerializer

    @extend_schema(
        operation_id="webhooks_list", responses={200: s.WebhookOutSerializer(many=True), **errors(*COMMON_ERRORS)}
    )
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(partner=request_partner(request), deleted_at__isnull=True).order_by(
            "pk"
        )
        return Response([_webhook_body(e) for e in endpoints])

    @extend_schema(
        operation_id="webhooks_create",
        request=s.WebhookInSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: s.WebhookCreatedSerializer, **errors(*COMMON_ERRORS, 422)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

    def handle(self, request, data):
        endpoint, secret = partner_services.webhook_endpoint_create(
            partner=request_partner(request), url=data["url"], event_types=data["event_types"]
        )
        return status.HTTP_201_CREATED, {**_webhook_body(endpoint), "secret": secret}


class WebhookDetailView(APIView):
    @extend_schema(operation_id="webhooks_delete", responses={204: None, **errors(*COMMON_ERRORS, 404)})
    def delete(self, request, pk: int):
        partner_services.webhook_endpoint_delete(partner=request_partner(request), endpoint_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
