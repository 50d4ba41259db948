from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from loyalty.api import views

v1 = [
    path("members/", views.MembersView.as_view(), name="members"),
    path("members/<str:member_number>/", views.MemberDetailView.as_view(), name="member"),
    path("members/<str:member_number>/balance/", views.BalanceView.as_view(), name="member-balance"),
    path("members/<str:member_number>/entries/", views.EntriesView.as_view(), name="member-entries"),
    path("purchases/", views.PurchasesView.as_view(), name="purchases"),
    path("returns/", views.ReturnsView.as_view(), name="returns"),
    path("redemptions/", views.RedemptionsView.as_view(), name="redemptions"),
    path("redemptions/<int:pk>/cancel/", views.RedemptionCancelView.as_view(), name="redemption-cancel"),
    path("events/", views.EventsView.as_view(), name="events"),
    path("webhooks/", views.WebhooksView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="webhook"),
]

app_name = "api"

urlpatterns = [
    path("v1/", include((v1, "v1"))),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
