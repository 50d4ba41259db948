from django.urls import path

from loyalty.messaging import views

app_name = "messaging"

urlpatterns = [
    path("o/<str:token>.gif", views.open_pixel, name="open"),
    path("c/<str:token>/", views.click, name="click"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("status/", views.provider_status, name="provider_status"),
]
