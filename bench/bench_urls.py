"""URLs for bench/api_bench.py: the real API plus a bare DRF endpoint that authenticates the
same way, locks one row and inserts one row (the floor the purchase endpoint is compared with)."""

from django.db import connection, transaction
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.urls import urlpatterns as app_urls


class BareView(APIView):
    def post(self, request):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT id FROM ledger_account WHERE id = %s FOR UPDATE", [int(request.data["account_id"])])
            cursor.execute(
                "INSERT INTO bench_bare (account_id, external_id) VALUES (%s, %s)",
                [int(request.data["account_id"]), str(request.data["external_id"])],
            )
        return Response({"ok": True}, status=201)


urlpatterns = [path("bench/bare/", BareView.as_view()), path("", include(app_urls))]
