"""Everything that writes messaging data."""

from loyalty.messaging.services.content import (
    content_delete,
    content_save,
    content_validate,
    policy_save,
    preference_set,
)
from loyalty.messaging.services.engagement import (
    inbox_mark_read,
    message_bounced,
    message_clicked,
    message_opened,
    message_unsubscribe,
)
from loyalty.messaging.services.events import EVENT_TRIGGERS, expiring_reminders_queue, outbox_consume
from loyalty.messaging.services.sending import (
    BatchResult,
    messages_claims_expire,
    messages_dispatch,
    messages_queue,
    messages_queue_members,
    messages_send,
)

__all__ = [
    "EVENT_TRIGGERS",
    "BatchResult",
    "content_delete",
    "content_save",
    "content_validate",
    "expiring_reminders_queue",
    "inbox_mark_read",
    "message_bounced",
    "message_clicked",
    "message_opened",
    "message_unsubscribe",
    "messages_claims_expire",
    "messages_dispatch",
    "messages_queue",
    "messages_queue_members",
    "messages_send",
    "outbox_consume",
    "policy_save",
    "preference_set",
]
