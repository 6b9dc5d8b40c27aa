"""Review API: listen to a suggestion, apply it as the recommended variant, compare two revisions."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack.api.throttles import RenderRequestThrottle
from backtrack.api.users import request_user
from backtrack.text import parse_id
from tracks import selectors, services
from tracks.api.serializers import RenderDetailOutputSerializer
from tracks.api.views import ERROR
from tracks.services.suggestions import track_recommend_settings


class CommentListenApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [RenderRequestThrottle]

    @extend_schema(
        operation_id="comments_listen",
        request=None,
        responses={202: RenderDetailOutputSerializer, 404: ERROR, 429: ERROR, 503: ERROR},
        description="The render of the suggestion's settings, exactly as `POST /api/renders/` with them: "
        "identical settings on one revision are one render, shared by everyone who listens.",
    )
    def post(self, request: Request, pk: int) -> Response:
        comment = selectors.comment_get(user=request.user, comment_id=pk)
        revision = comment.revision or comment.track.current_revision
        if comment.settings is None or comment.is_deleted or revision is None:
            raise ValidationError("this comment suggests no settings to listen to")
        render, _created = services.render_request(
            user=request_user(request), revision=revision, settings=dict(comment.settings)
        )
        render = selectors.render_get(user=request.user, render_id=render.pk)
        body = RenderDetailOutputSerializer(render, context={"request": request}).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/renders/{render.pk}/"}
        )


class RecommendedOutputSerializer(serializers.Serializer):
    track = serializers.IntegerField(source="pk")
    recommended_settings = serializers.JSONField(allow_null=True)
    settings_summary = serializers.SerializerMethodField()

    def get_settings_summary(self, track: object) -> str:
        revision = getattr(track, "current_revision", None)
        return selectors.settings_summary(
            settings=getattr(track, "recommended_settings", None),
            parts=revision.parts if revision is not None else None,
        )


class CommentRecommendApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="comments_recommend",
        request=None,
        responses={200: RecommendedOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
        description="The producer makes this suggestion's settings the track's recommended variant.",
    )
    def post(self, request: Request, pk: int) -> Response:
        comment = selectors.comment_get(user=request.user, comment_id=pk)
        track = track_recommend_settings(user=request_user(request), comment=comment)
        return Response(RecommendedOutputSerializer(track).data)


class PartDiffSerializer(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.CharField(help_text="added | removed | changed | same")
    changed_bars = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    renamed_from = serializers.CharField(required=False)


class RevisionDiffOutputSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    against = serializers.IntegerField(allow_null=True)
    tempo_changed = serializers.BooleanField()
    key_changed = serializers.BooleanField()
    bars_before = serializers.IntegerField()
    bars_after = serializers.IntegerField()
    parts = PartDiffSerializer(many=True)


class RevisionDiffApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="revisions_diff",
        parameters=[
            OpenApiParameter("against", int, description="compare with this revision (default: previous)")
        ],
        responses={200: RevisionDiffOutputSerializer, 400: ERROR, 404: ERROR},
    )
    def get(self, request: Request, pk: int) -> Response:
        revision = selectors.revision_get(user=request.user, revision_id=pk)
        against_param = request.query_params.get("against")
        against = None
        if against_param:
            against_id = parse_id(against_param)
            if against_id is None:
                raise ValidationError({"against": ["against must be a revision id"]})
            against = selectors.revision_of_track(track_id=revision.track_id, object_id=against_id)
            if against is None:
                raise ValidationError({"against": ["no such revision of this track"]})
        diff = selectors.revision_diff(revision=revision, against=against)
        return Response(RevisionDiffOutputSerializer(diff).data)
