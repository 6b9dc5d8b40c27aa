"""GET /api/sounds/: the installed sound sets a render may name (``sound``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracks.services.sounds import sound_sets_list


class SoundOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    default = serializers.BooleanField(help_text="the sound of a track that names none")


class SoundListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="sounds_list", responses={200: SoundOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(SoundOutputSerializer(sound_sets_list(), many=True).data)
