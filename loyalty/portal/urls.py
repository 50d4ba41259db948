from django.contrib.auth import views as auth_views
from django.urls import path

from loyalty.portal import views, views_challenges, views_engagement

app_name = "portal"

urlpatterns = [
    path("", views.welcome, name="welcome"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("join/", views.join, name="join"),
    path("join/sent/", views.join_sent, name="join_sent"),
    path("join/confirm/<str:token>/", views.join_confirm, name="join_confirm"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password-reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("goodbye/", views.account_closed, name="account_closed"),
    path("home/", views.home, name="home"),
    path("card/", views.card, name="card"),
    path("history/", views.history, name="history"),
    path("history/<int:transaction_id>/", views.movement, name="movement"),
    path("my-data/", views.my_data, name="my_data"),
    path("my-data/consents/", views.consents, name="consents"),
    path("my-data/export.json", views.export_json, name="export_json"),
    path("my-data/export.zip", views.export_zip, name="export_zip"),
    path("my-data/close/", views.close_account, name="close_account"),
    path("my-data/erase/", views.erase_account, name="erase_account"),
    path("offers/", views.offers, name="offers"),
    path("offers/<int:offer_id>/activate/", views.offer_activate, name="offer_activate"),
    path("rewards/", views.rewards, name="rewards"),
    path("rewards/<int:reward_id>/redeem/", views.reward_redeem, name="reward_redeem"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/<int:coupon_id>/", views.wallet_coupon, name="wallet_coupon"),
    path("wallet/rewards/<int:reward_redemption_id>/cancel/", views.reward_cancel, name="reward_cancel"),
    # engagement: surveys and referrals
    path("surveys/", views_engagement.surveys, name="surveys"),
    path("surveys/<int:survey_id>/", views_engagement.survey, name="survey"),
    path("invite/", views_engagement.invite, name="invite"),
    # engagement: challenges and badges, community events
    path("challenges/", views_challenges.challenges, name="challenges"),
    path("challenges/<int:challenge_id>/join/", views_challenges.challenge_join, name="challenge_join"),
    path("events/", views_challenges.events, name="events"),
    path("events/<int:event_id>/register/", views_challenges.event_join, name="event_register"),
    path("events/<int:event_id>/cancel/", views_challenges.event_cancel, name="event_cancel"),
]
