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


@pytest.mark.django_db(transaction=True)
def test_simultaneous_requests_of_one_user_never_pass_the_active_cap(enqueued, settings):
    # given: one performer fires eight different render requests at the same moment, cap 3
    settings.RENDER_MAX_ACTIVE_PER_USER = 3
    track = TrackFactory()
    performer = PerformerFactory()
    revision = track.current_revision
    barrier = threading.Barrier(8)
    created: list[int] = []
    refused: list[BaseException] = []
    errors: list[BaseException] = []

    def request(transpose):
        try:
            barrier.wait(timeout=10)
            render, _ = services.render_request(
                user=performer, revision=revision, settings={"transpose": transpose}
            )
            created.append(render.pk)
        except services.RenderLimitReached as exc:
            refused.append(exc)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    # when
    threads = [threading.Thread(target=request, args=(transpose,)) for transpose in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then
    assert errors == []
    assert len(created) == 3
    assert len(refused) == 5
    assert Render.objects.filter(requested_by=performer).count() == 3
    assert sorted(enqueued) == sorted(created)
