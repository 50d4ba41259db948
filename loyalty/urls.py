from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("loyalty.api.urls")),
    path("m/", include("loyalty.messaging.urls")),
    path("staff/", include("loyalty.dashboards.urls")),
    path("", include("loyalty.portal.urls")),
]
