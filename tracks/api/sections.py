"""Sections of a revision (the producer corrects them) and performers' saved arrangements."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack.api.parsers import JSONParser
from backtrack.api.users import request_user
from tracks import selectors, services
from tracks.api.serializers import RevisionOutputSerializer
from tracks.api.views import ERROR
from tracks.models import Revision, SavedArrangement


class SectionInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200)
    start_bar = serializers.IntegerField()


class RevisionSectionsOutputSerializer(RevisionOutputSerializer):
    bars = serializers.SerializerMethodField()
    sections = serializers.SerializerMethodField()

    class Meta(RevisionOutputSerializer.Meta):
        fields = [*RevisionOutputSerializer.Meta.fields, "bars", "sections"]

    def get_bars(self, revision: Revision) -> int:
        return services.sections.revision_bars(revision=revision)

    def get_sections(self, revision: Revision) -> list[dict[str, Any]]:
        return services.revision_sections(revision=revision)


class RevisionSectionsApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="revisions_sections",
        request=SectionInputSerializer(many=True),
        responses={200: RevisionSectionsOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
        description="The track's producer corrects the sections: [{name, start_bar}, ...] from bar 1, "
        "start bars increasing; each section ends where the next starts, the last at the song's end.",
    )
    def put(self, request: Request, pk: int) -> Response:
        revision = selectors.revision_get(user=request.user, revision_id=pk)
        data = request.data.get("sections") if isinstance(request.data, dict) else request.data
        revision = services.revision_sections_update(
            user=request_user(request), revision=revision, sections=data
        )
        return Response(RevisionSectionsOutputSerializer(revision).data)


class SavedArrangementInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=200)
    items = serializers.JSONField(help_text='["Intro", "Chorus x2", "17-24", "Outro"]')


class SavedArrangementOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = SavedArrangement
        fields = ["id", "track", "name", "items", "created_at"]


class TrackArrangementsApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="tracks_arrangements_list",
        responses={200: SavedArrangementOutputSerializer(many=True), 404: ERROR},
        description="The caller's saved arrangements of this track.",
    )
    def get(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        rows = services.saved_arrangement_list(user=request_user(request), track=track)
        return Response(SavedArrangementOutputSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="tracks_arrangements_save",
        request=SavedArrangementInputSerializer,
        responses={201: SavedArrangementOutputSerializer, 200: SavedArrangementOutputSerializer, 400: ERROR},
        description="Save a named arrangement (201); saving under an existing name replaces its items (200).",
    )
    def post(self, request: Request, pk: int) -> Response:
        track = selectors.track_get(user=request.user, track_id=pk)
        serializer = SavedArrangementInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, created = services.saved_arrangement_save(
            user=request_user(request),
            track=track,
            name=serializer.validated_data["name"],
            items=serializer.validated_data["items"],
        )
        return Response(
            SavedArrangementOutputSerializer(row).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SavedArrangementDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="arrangements_delete",
        responses={204: None, 404: ERROR},
        description="Delete one of the caller's saved arrangements.",
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.saved_arrangement_delete(user=request_user(request), arrangement_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
