"""Two identical render requests at the same moment make one render and one task."""

import threading

import pytest
from django.db import close_old_connections, connection

from tests.factories import PerformerFactory, TrackFactory
from tracks import services
from tracks.models import Render


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_create_one_render_and_one_task(enqueued):
    # given
    track = TrackFactory()
    users = PerformerFactory.create_batch(6)
    revision = track.current_revision
    barrier = threading.Barrier(len(users))
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def request(user):
        try:
            barrier.wait(timeout=10)
            render, created = services.render_request(
                user=user, revision=revision, settings={"transpose": 4, "tempo": 0.9}
            )
            results.append((render.pk, created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    # when
    threads = [threading.Thread(target=request, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then
    assert errors == []
    assert len(results) == len(users)
    assert len({render_id for render_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Render.objects.count() == 1
    assert enqueued == [results[0][0]]
    assert Render.objects.get().requesters.count() == len(users)
