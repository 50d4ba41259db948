from django.urls import path

from loyalty.dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("", views.index, name="index"),
    path("health/", views.health, name="health"),
    path("tiers/", views.tiers, name="tiers"),
    path("segments/", views.segments, name="segments"),
    path("offers/", views.offers, name="offers"),
    path("profitability/", views.profitability, name="profitability"),
]
