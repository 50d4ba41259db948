from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who changed what, when and why. Written by ``audit_record`` for every staff change."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label or 'system'} {self.action} {self.target_repr}"


class IdempotencyRecord(models.Model):
    """First response to a request carrying an ``Idempotency-Key`` (kept 48 hours), as the exact
    bytes sent, so a replay is the first answer byte for byte.

    The row is written (state ``running``) by the first statement of the transaction that does
    the work and commits with it (``loyalty.core.idempotency``): a second request with the same
    key waits for that transaction on the unique index, then replays; a request that died takes
    its claim with it when the database rolls its transaction back."""

    RUNNING = "running"
    DONE = "done"

    scope = models.CharField(max_length=100, help_text="Who sent it (e.g. partner:12)")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, default=RUNNING)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_once_per_scope")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class ConfigStamp(models.Model):
    """One row: a number database triggers renew whenever program configuration changes
    (``loyalty.core.config``). Never written by application code."""

    stamp = models.BigIntegerField(default=0)

    class Meta:
        db_table = "core_configstamp"

    def __str__(self) -> str:
        return f"configuration stamp {self.stamp}"
