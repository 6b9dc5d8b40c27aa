"""Tracks API. One view per resource and method; views validate shapes, services decide."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack import http_ranges
from backtrack.api.pagination import PageNumberPagination100
from backtrack.api.parsers import JSONParser
from backtrack.api.throttles import RenderRequestThrottle, UploadThrottle
from backtrack.api.users import request_user
from backtrack.text import parse_id
from performers import selectors as performer_selectors
from performers.models import User
from performers.services import chosen_key_remember
from tracks import selectors, services
from tracks.api.serializers import (
    CommentCreateInputSerializer,
    CommentOutputSerializer,
    CommentPageSerializer,
    CommentResolveInputSerializer,
    CommentThreadOutputSerializer,
    CommentUpdateInputSerializer,
    KeySuggestionsOutputSerializer,
    NotificationOutputSerializer,
    NotificationPageSerializer,
    NotificationReadInputSerializer,
    NotificationReadOutputSerializer,
    RenderCreateInputSerializer,
    RenderDetailOutputSerializer,
    RenderListFilterSerializer,
    RenderOutputSerializer,
    RenderPageSerializer,
    RevisionCreateInputSerializer,
    RevisionOutputSerializer,
    TrackChosenKeyInputSerializer,
    TrackChosenKeyOutputSerializer,
    TrackCreateInputSerializer,
    TrackListFilterSerializer,
    TrackListOutputSerializer,
    TrackOutputSerializer,
    TrackPageSerializer,
    TrackUpdateInputSerializer,
)
from tracks.models import Render, RenderStatus

ERROR = OpenApiResponse(
    response={"type": "object", "properties": {"detail": {"type": "string"}}}, description="reason"
)


class RenderNotReady(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the render is not ready yet"


def _paginate(
    request: Request, view: APIView, queryset: Any, serializer_class: Any, **context: Any
) -> Response:
    paginator = PageNumberPagination100()
    page: Any = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer_class(page, many=True, context={"request": request, **context}).data
    return paginator.get_paginated_response(data)


# --- tracks ------------------------------------------------------------------------------------


class TrackListCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadThrottle]

    @extend_schema(
        operation_id="tracks_list",
        parameters=[
            OpenApiParameter("genre", str, description="genre slug"),
            OpenApiParameter("q", str, description="words in the title, description or producer"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="at most 100"),
        ],
        responses={200: TrackPageSerializer},
    )
    def get(self, request: Request) -> Response:
        filters = TrackListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        tracks = selectors.track_list(user=request.user, **filters.validated_data)
        return _paginate(request, self, tracks, TrackListOutputSerializer)

    @extend_schema(
        operation_id="tracks_create",
        request={"multipart/form-data": TrackCreateInputSerializer},
        responses={201: TrackOutputSerializer, 400: ERROR, 403: ERROR},
    )
    def post(self, request: Request) -> Response:
        services.track_create_check(user=request_user(request))  # the wrong role is 403 before 400
        serializer = TrackCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        track = services.track_create(producer=request_user(request), **serializer.validated_data)
        track = selectors.track_get(user=request.user, track_id=track.pk)
        return Response(TrackOutputSerializer(track).data, status=status.HTTP_201_CREATED)


class TrackDetailApi(APIView):
    @extend_schema(operation_id="tracks_retrieve", responses={200: TrackOutputSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        return Response(TrackOutputSerializer(selectors.track_get(user=request.user, track_id=pk)).data)

    @extend_schema(
        operation_id="tracks_update",
        request=TrackUpdateInputSerializer,
        responses={200: TrackOutputSerializer, 403: ERROR, 404: ERROR},
    )
    def patch(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        services.track_change_check(user=request_user(request), track=track, action="edits it")
        serializer = TrackUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.track_update(user=request_user(request), track=track, **serializer.validated_data)
        return Response(TrackOutputSerializer(selectors.track_get(user=request.user, track_id=pk)).data)


class RevisionListCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadThrottle]

    @extend_schema(
        operation_id="revisions_list", responses={200: RevisionOutputSerializer(many=True), 404: ERROR}
    )
    def get(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        return Response(RevisionOutputSerializer(selectors.revision_list(track=track), many=True).data)

    @extend_schema(
        operation_id="revisions_create",
        request={"multipart/form-data": RevisionCreateInputSerializer},
        responses={201: RevisionOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        services.track_change_check(user=request_user(request), track=track, action="uploads revisions")
        serializer = RevisionCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        revision = services.revision_create(
            track=track, user=request_user(request), **serializer.validated_data
        )
        return Response(RevisionOutputSerializer(revision).data, status=status.HTTP_201_CREATED)


def _vocal_range_for(request: Request) -> tuple[int | None, int | None]:
    """The range to fit: ``?performer=ID``'s when the caller may see it (else 404), or the caller's."""
    performer_param = request.query_params.get("performer")
    if performer_param:
        performer_id = parse_id(performer_param)
        if performer_id is None:
            raise ValidationError({"performer": ["performer must be a user id"]})
        vocal_range = performer_selectors.vocal_range_get(viewer=request.user, performer_id=performer_id)
        if vocal_range is None:
            raise Http404(performer_selectors.VOCAL_RANGE_HIDDEN)
        return vocal_range
    if isinstance(request.user, User):
        profile = performer_selectors.profile_get(user=request_user(request))
        return profile.vocal_low, profile.vocal_high
    return None, None


class KeySuggestionsApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="tracks_key_suggestions",
        parameters=[
            OpenApiParameter(
                "performer",
                int,
                description="user id; default: you. Only a performer who shares their vocal range "
                "(or you); anyone else answers 404 like an unknown id.",
            )
        ],
        responses={200: KeySuggestionsOutputSerializer, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        vocal_low, vocal_high = _vocal_range_for(request)
        result = selectors.key_suggestions(track=track, vocal_low=vocal_low, vocal_high=vocal_high)
        chosen = (
            performer_selectors.chosen_key_get(performer=request_user(request), track=track)
            if isinstance(request.user, User)
            else None
        )
        return Response({**result, "chosen_transpose": chosen})


class ChosenKeyApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="tracks_chosen_key",
        request=TrackChosenKeyInputSerializer,
        responses={200: TrackChosenKeyOutputSerializer, 404: ERROR},
    )
    def put(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        serializer = TrackChosenKeyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chosen = chosen_key_remember(
            performer=request_user(request), track=track, **serializer.validated_data
        )
        return Response({"track": track.pk, "transpose": chosen.transpose})


# --- renders -----------------------------------------------------------------------------------


class RenderCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]
    throttle_classes = [RenderRequestThrottle]

    @extend_schema(
        operation_id="renders_create",
        request=RenderCreateInputSerializer,
        responses={
            202: RenderDetailOutputSerializer,
            400: ERROR,
            404: ERROR,
            429: ERROR,
            503: ERROR,
        },
        description="Queue a render, or get the existing render with the same settings on the same "
        "revision (no new work; when it is done the body already has its download_url). Always 202, "
        "as the contract says, so clients handle one answer.",
    )
    def post(self, request: Request) -> Response:
        serializer = RenderCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        listen_from = float(data.pop("listen_from", 0.0))
        revision_id = data.pop("revision", None)
        track_id = data.pop("track", None)
        if revision_id is not None:
            revision = selectors.revision_get(user=request.user, revision_id=revision_id)
            if track_id is not None and revision.track_id != track_id:
                raise ValidationError({"revision": ["that revision belongs to another track"]})
        else:
            track = selectors.track_get(user=request.user, track_id=track_id)
            if track.current_revision is None:
                raise ValidationError({"track": ["this track has no revision yet"]})
            revision = track.current_revision
        render, _created = services.render_request(
            user=request_user(request), revision=revision, settings=data, listen_from=listen_from
        )
        render = selectors.render_get(user=request.user, render_id=render.pk)
        body = RenderDetailOutputSerializer(render, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/renders/{render.pk}/"}
        )


class RenderDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="renders_retrieve", responses={200: RenderDetailOutputSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        render = selectors.render_get(user=request.user, render_id=pk)
        return Response(RenderDetailOutputSerializer(render, context={"request": request}).data)


class RenderDownloadApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="renders_download",
        parameters=[
            OpenApiParameter(
                "Range",
                str,
                location=OpenApiParameter.HEADER,
                description="one byte range, e.g. bytes=1000- (resuming a download)",
            )
        ],
        responses={
            (200, "audio/mpeg"): OpenApiResponse(response=OpenApiTypes.BINARY, description="the MP3"),
            (206, "audio/mpeg"): OpenApiResponse(response=OpenApiTypes.BINARY, description="the range"),
            404: ERROR,
            409: ERROR,
            416: OpenApiResponse(description="the range is outside the file (Content-Range: bytes */size)"),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        render = selectors.render_get(user=request.user, render_id=pk)
        if render.status != RenderStatus.DONE or not render.audio:
            raise RenderNotReady(f"the render is not ready (status: {render.status})")
        try:
            response = http_ranges.stored_file_response(
                render.audio,
                range_header=request.headers.get("Range"),
                content_type=selectors.render_content_type(render=render),
                filename=selectors.render_download_filename(render=render),
                as_attachment=True,
            )
        except OSError as exc:
            raise Http404("the audio of this render is gone; request it again") from exc
        services.render_mark_accessed(render=render)
        response["X-Content-Type-Options"] = "nosniff"
        return response


class TrackRenderListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="tracks_renders",
        parameters=[OpenApiParameter("status", str, enum=[choice for choice, _ in RenderStatus.choices])],
        responses={200: RenderPageSerializer, 404: ERROR},
    )
    def get(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        filters = RenderListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        renders = selectors.render_list(user=request.user, track=track, **filters.validated_data)
        return _paginate(request, self, renders, RenderOutputSerializer)


# --- comments ----------------------------------------------------------------------------------


def _viewed_render(request: Request, track_id: int) -> Render | None:
    render_param = request.query_params.get("render")
    if not render_param:
        return None
    render_id = parse_id(render_param)
    if render_id is None:
        raise ValidationError({"render": ["render must be a render id"]})
    render = selectors.render_get(user=request.user, render_id=render_id)
    if render.revision.track_id != track_id:
        raise ValidationError({"render": ["that render belongs to another track"]})
    return render


def _resolve_in_track(request: Request, track_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Turn ids from the request into objects of this track; unknown ids are field errors."""
    resolved: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    lookups = (
        ("parent", selectors.comment_of_track, "no such comment on this track"),
        ("revision", selectors.revision_of_track, "no such revision of this track"),
        ("render", selectors.render_of_track, "no such render of this track"),
    )
    for field, lookup, missing in lookups:
        if data.get(field) is not None:
            resolved[field] = lookup(track_id=track_id, object_id=data[field])
            if resolved[field] is None:
                errors[field] = [missing]
    if errors:
        raise ValidationError(errors)
    return resolved


class CommentListCreateApi(APIView):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="comments_list",
        parameters=[
            OpenApiParameter("resolved", bool, description="only resolved (true) or open (false) threads"),
            OpenApiParameter("render", int, description="give positions in seconds for this render"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: CommentPageSerializer, 404: ERROR},
    )
    def get(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        resolved_param = request.query_params.get("resolved") or ""
        resolved = resolved_param.lower() in ("1", "true", "yes") if resolved_param else None
        comments = selectors.comment_list(user=request.user, track=track, resolved=resolved)
        return _paginate(
            request,
            self,
            comments,
            CommentThreadOutputSerializer,
            viewer=request.user,
            render=_viewed_render(request, track.pk),
        )

    @extend_schema(
        operation_id="comments_create",
        request=CommentCreateInputSerializer,
        parameters=[OpenApiParameter("render", int, description="give positions in seconds for this render")],
        responses={201: CommentOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        serializer = CommentCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        comment = services.comment_post(
            user=request_user(request),
            track=track,
            body=data["body"],
            at_seconds=data.get("at_seconds"),
            settings=data.get("settings"),
            **_resolve_in_track(request, track.pk, data),
        )
        comment = selectors.comment_get(user=request.user, comment_id=comment.pk)
        context = {"request": request, "viewer": request.user, "render": _viewed_render(request, track.pk)}
        return Response(
            CommentOutputSerializer(comment, context=context).data, status=status.HTTP_201_CREATED
        )


class CommentDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="comments_update",
        request=CommentUpdateInputSerializer,
        responses={200: CommentOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def patch(self, request: Request, pk: int) -> Response:
        comment = selectors.comment_get(user=request.user, comment_id=pk)
        serializer = CommentUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.comment_update(
            user=request_user(request), comment=comment, body=serializer.validated_data["body"]
        )
        return Response(CommentOutputSerializer(comment, context={"viewer": request.user}).data)

    @extend_schema(operation_id="comments_destroy", responses={204: None, 403: ERROR, 404: ERROR})
    def delete(self, request: Request, pk: int) -> Response:
        comment = selectors.comment_get(user=request.user, comment_id=pk)
        services.comment_delete(user=request_user(request), comment=comment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentResolveApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="comments_resolve",
        request=CommentResolveInputSerializer,
        responses={200: CommentOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        comment = selectors.comment_get(user=request.user, comment_id=pk)
        serializer = CommentResolveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        revision = None
        if data.get("revision") is not None:
            revision = _resolve_in_track(request, comment.track_id, {"revision": data["revision"]})[
                "revision"
            ]
        comment = services.comment_resolve(
            user=request_user(request), comment=comment, resolved=data["resolved"], revision=revision
        )
        return Response(CommentOutputSerializer(comment, context={"viewer": request.user}).data)


# --- notifications -----------------------------------------------------------------------------


class NotificationListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="notifications_list",
        parameters=[OpenApiParameter("unread", bool), OpenApiParameter("page", int)],
        responses={200: NotificationPageSerializer},
    )
    def get(self, request: Request) -> Response:
        unread = request.query_params.get("unread", "").lower() in ("1", "true", "yes")
        notifications = selectors.notification_list(user=request_user(request), unread_only=unread)
        return _paginate(request, self, notifications, NotificationOutputSerializer)


class NotificationReadApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="notifications_read",
        request=NotificationReadInputSerializer,
        responses={200: NotificationReadOutputSerializer},
        description="Mark the given notifications (or all) as read.",
    )
    def post(self, request: Request) -> Response:
        serializer = NotificationReadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request_user(request)
        marked = services.notification_mark_read(user=user, ids=serializer.validated_data.get("ids"))
        return Response({"marked": marked})
