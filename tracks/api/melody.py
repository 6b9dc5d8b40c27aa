"""The producer's correction of a revision's melody part."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack.api.parsers import JSONParser
from backtrack.api.users import request_user
from tracks import selectors, services
from tracks.api.serializers import RevisionOutputSerializer
from tracks.api.views import ERROR


class RevisionMelodyInputSerializer(serializers.Serializer):
    part = serializers.IntegerField(
        allow_null=True, min_value=0, help_text="index of the part that carries the tune; null: none"
    )


class RevisionMelodyApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="revisions_melody",
        request=RevisionMelodyInputSerializer,
        responses={200: RevisionOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR},
        description="The track's producer names the melody part (used by key suggestions and mixes).",
    )
    def put(self, request: Request, pk: int) -> Response:
        revision = selectors.revision_get(user=request.user, revision_id=pk)
        serializer = RevisionMelodyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        revision = services.revision_melody_set(
            user=request_user(request), revision=revision, part=serializer.validated_data["part"]
        )
        return Response(RevisionOutputSerializer(revision).data)
