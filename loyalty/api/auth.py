"""Partner authentication (``Authorization: Api-Key <key>``) and scopes. Throttles: loyalty.api.throttling."""

from __future__ import annotations

import datetime as dt

from django.db.models.expressions import RawSQL
from rest_framework import authentication, exceptions, permissions

from loyalty.api.throttling import BadKeyAddressThrottle, PerKeyThrottle
from loyalty.core import clock
from loyalty.core.config import STAMP_SQL, config_stamp_seen
from loyalty.partners.models import PartnerAPIKey, PartnerStatus

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class PartnerUser:
    """The authenticated principal: a partner through one of its keys."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, key: PartnerAPIKey):
        self.key = key
        self.partner = key.partner
        self.pk = None

    def get_username(self) -> str:
        return f"partner:{self.partner.pk}"

    def __str__(self) -> str:
        return self.partner.name


def _usable_key(raw: str) -> PartnerAPIKey | None:
    """``PartnerAPIKey.objects.get_from_key`` with the partner and the configuration stamp of this
    request (``loyalty.core.config``) in the same query."""
    prefix, _, _ = raw.partition(".")
    key = (
        PartnerAPIKey.objects.get_usable_keys()
        .select_related("partner")
        .annotate(config_stamp=RawSQL(STAMP_SQL, []))  # noqa: S611 - a constant statement
        .filter(prefix=prefix)
        .first()
    )
    if key is None or not key.is_valid(raw):
        return None
    config_stamp_seen(key.config_stamp)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword != self.keyword or not raw.strip():
            self._refuse(request, "Use 'Authorization: Api-Key <key>'")
        key = _usable_key(raw.strip())
        if key is None:
            self._refuse(request, "Unknown or revoked API key")
        if key.has_expired:
            self._refuse(request, "This API key has expired")
        if key.partner.status != PartnerStatus.ACTIVE:
            self._refuse(request, "This partner is suspended")
        now = clock.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            PartnerAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return PartnerUser(key), key

    @staticmethod
    def _refuse(request, message: str):
        """401, or 429 once the client's address sent too many unusable keys."""
        throttle = BadKeyAddressThrottle()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(throttle.wait())
        raise exceptions.AuthenticationFailed(message)

    def authenticate_header(self, request):
        return self.keyword


class HasScope(permissions.BasePermission):
    """GET/HEAD/OPTIONS need the ``read`` scope; everything else needs ``write``."""

    message = "This API key lacks the scope for this request"

    def has_permission(self, request, view):
        user = request.user
        if not isinstance(user, PartnerUser):
            return False
        needed = "read" if request.method in permissions.SAFE_METHODS else "write"
        return needed in (user.key.scopes or [])


__all__ = ["ApiKeyAuthentication", "HasScope", "PartnerUser", "PerKeyThrottle"]
