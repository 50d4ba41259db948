from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from loyalty.api import views, views_offers
from loyalty.core.config import config_scoped

v1 = [
    path("members/", config_scoped(views.MembersView.as_view()), name="members"),
    path("members/<str:member_number>/", config_scoped(views.MemberDetailView.as_view()), name="member"),
    path("members/<str:member_number>/balance/", config_scoped(views.BalanceView.as_view()), name="member-balance"),
    path("members/<str:member_number>/entries/", config_scoped(views.EntriesView.as_view()), name="member-entries"),
    path("purchases/", config_scoped(views.PurchasesView.as_view()), name="purchases"),
    path("returns/", config_scoped(views.ReturnsView.as_view()), name="returns"),
    path("redemptions/", config_scoped(views.RedemptionsView.as_view()), name="redemptions"),
    path("redemptions/<int:pk>/cancel/", config_scoped(views.RedemptionCancelView.as_view()), name="redemption-cancel"),
    path("events/", config_scoped(views.EventsView.as_view()), name="events"),
    path("rewards/", config_scoped(views_offers.RewardsView.as_view()), name="rewards"),
    path(
        "members/<str:member_number>/rewards/<int:pk>/redeem/",
        config_scoped(views_offers.RewardRedeemView.as_view()),
        name="reward-redeem",
    ),
    path("coupons/validate/", config_scoped(views_offers.CouponValidateView.as_view()), name="coupons-validate"),
    path("coupons/redeem/", config_scoped(views_offers.CouponRedeemView.as_view()), name="coupons-redeem"),
    path("coupons/<str:code>/cancel/", config_scoped(views_offers.CouponCancelView.as_view()), name="coupon-cancel"),
    path("webhooks/", config_scoped(views.WebhooksView.as_view()), name="webhooks"),
    path("webhooks/<int:pk>/", config_scoped(views.WebhookDetailView.as_view()), name="webhook"),
]

app_name = "api"

urlpatterns = [
    path("v1/", include((v1, "v1"))),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves Swagger UI's start-up script as a file (?script), not inline: CSP allows it
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
