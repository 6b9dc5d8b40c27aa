"""Notifications: in the app at once, by email in batches per recipient.

A burst of comments must not become a burst of emails: the first notification is emailed at once,
the ones that follow within ``NOTIFICATION_EMAIL_INTERVAL_S`` wait and go out together in one digest
(sent by the periodic ``notifications_email_digest`` task, or by the next notification once the
interval has passed).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings as django_settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from backtrack.text import clean_line
from performers.models import User
from tracks import selectors
from tracks.models import Notification, NotificationKind, Render

logger = logging.getLogger(__name__)

DIGEST_MAX_ITEMS = 50


def notification_create(*, recipient: User, kind: str, text: str, url: str = "") -> Notification:
    """Store an in-app notification; email it after commit (batched) when the user has an address."""
    notification = Notification.objects.create(
        recipient=recipient,
        kind=kind,
        text=clean_line(text)[:500],
        url=url[:500],
        email_pending=bool(recipient.email),
    )
    if recipient.email:
        transaction.on_commit(partial(notification_emails_send, recipient_id=recipient.pk))
    return notification


def _email_interval() -> timedelta:
    return timedelta(seconds=int(django_settings.NOTIFICATION_EMAIL_INTERVAL_S))


def _link(url: str) -> str:
    return f"{django_settings.SITE_URL.rstrip('/')}{url}" if url else ""


def notification_emails_send(*, recipient_id: int) -> int:
    """Email ``recipient_id``'s pending notifications in one message, unless they were emailed less
    than the interval ago (then they wait for the digest). Returns how many were emailed.

    Mail trouble is logged, never raised: it must not undo the action that caused the notification.
    """
    now = timezone.now()
    with transaction.atomic():
        pending_rows = Notification.objects.select_for_update().filter(
            recipient_id=recipient_id, email_pending=True
        )
        pending = list(pending_rows.select_related("recipient").order_by("created_at", "id"))
        if not pending:
            return 0
        last = Notification.objects.filter(recipient_id=recipient_id).aggregate(last=Max("emailed_at"))[
            "last"
        ]
        if last is not None and last > now - _email_interval():
            return 0
        Notification.objects.filter(pk__in=[item.pk for item in pending]).update(
            email_pending=False, emailed_at=now
        )
    recipient = pending[0].recipient
    if not recipient.email:
        return 0
    if len(pending) == 1:
        subject = f"Backtrack: {pending[0].text}"
        link = _link(pending[0].url)
        body = f"{pending[0].text}\n\n{link}\n" if link else f"{pending[0].text}\n"
    else:
        subject = f"Backtrack: {len(pending)} new notifications"
        lines = []
        for item in pending[-DIGEST_MAX_ITEMS:]:
            lines.append(f"- {item.text}")
            if item.url:
                lines.append(f"  {_link(item.url)}")
        if len(pending) > DIGEST_MAX_ITEMS:
            lines.insert(0, f"(the latest {DIGEST_MAX_ITEMS} of {len(pending)})")
        lines.append("\nAll of them: " + _link(reverse("tracks:notifications")))
        body = "\n".join(lines) + "\n"
    try:
        send_mail(
            subject=clean_line(subject)[:150], message=body, from_email=None, recipient_list=[recipient.email]
        )
    except Exception:
        logger.exception("could not email %s notifications to user %s", len(pending), recipient_id)
    return len(pending)


def notification_emails_digest() -> int:
    """Send every recipient's waiting notifications whose interval has passed; emails sent."""
    recipients = (
        Notification.objects.filter(email_pending=True).values_list("recipient_id", flat=True).distinct()
    )
    return sum(1 for recipient_id in list(recipients) if notification_emails_send(recipient_id=recipient_id))


def render_requesters_notify(*, render: Render, kind: NotificationKind) -> None:
    track = render.revision.track
    key = selectors.render_key(render=render)
    if kind == NotificationKind.RENDER_DONE:
        text = (
            f"Your render of “{track.title}” ({key}) is ready"
            if key
            else f"Your render of “{track.title}” is ready"
        )
    else:
        text = f"Your render of “{track.title}” failed: {render.error}"
    for recipient in render.requesters.all():
        notification_create(recipient=recipient, kind=kind, text=text, url=track.get_absolute_url())


def notification_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    notifications = Notification.objects.filter(recipient=user, read=False)
    if ids is not None:
        notifications = notifications.filter(pk__in=ids)
    return notifications.update(read=True)
