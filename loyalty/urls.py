from django.contrib import admin
from django.urls import include, path

from loyalty.imports.admin_views import opening_balances_view

urlpatterns = [
    path(  # the admin's opening-balance import (loyalty/imports/admin_views.py)
        "admin/imports/opening-balances/",
        admin.site.admin_view(opening_balances_view),
        name="admin_opening_balances",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("loyalty.api.urls")),
    path("m/", include("loyalty.messaging.urls")),
    path("staff/", include("loyalty.dashboards.urls")),
    path("", include("loyalty.portal.urls")),
]
