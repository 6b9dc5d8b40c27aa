"""Requests API: a performer orders a track; each step of its life is one POST (the table of legal steps
is ``tracks.services.requests.STEPS``; an illegal step answers 409 with the reason)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack.api.pagination import PageNumberPagination100
from backtrack.api.parsers import JSONParser
from backtrack.api.users import request_user
from tracks import rules, selectors
from tracks.api.serializers import UserBriefSerializer
from tracks.api.views import ERROR
from tracks.models import RequestStatus, TrackRequest
from tracks.services import requests as request_services

# --- serializers -------------------------------------------------------------------------------


class RequestCreateInputSerializer(serializers.Serializer):
    producer = serializers.IntegerField(help_text="the producer's user id")
    title = serializers.CharField(max_length=rules.TITLE_MAX)
    brief = serializers.CharField(max_length=rules.TEXT_MAX)
    track = serializers.IntegerField(required=False, allow_null=True, help_text="an existing track to adapt")
    key = serializers.CharField(required=False, allow_blank=True, max_length=20, help_text='e.g. "A minor"')
    tempo_bpm = serializers.FloatField(required=False, allow_null=True)
    due_date = serializers.DateField(required=False, allow_null=True)


STATUS_HELP = " | ".join(choice for choice, _ in RequestStatus.choices)


class RequestListFilterSerializer(serializers.Serializer):
    status = serializers.CharField(required=False, allow_blank=True, help_text=STATUS_HELP)

    def validate_status(self, value: str) -> str:
        if value and value not in RequestStatus.values:
            raise serializers.ValidationError(f"status must be one of {STATUS_HELP}")
        return value


class RequestDeclineInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=rules.TEXT_MAX)


class RequestDeliverInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(help_text="revision id")


class RequestChangesInputSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=rules.COMMENT_MAX)


class RequestOutputSerializer(serializers.ModelSerializer):
    status = serializers.CharField(help_text=STATUS_HELP)
    performer = UserBriefSerializer()
    producer = UserBriefSerializer()
    delivered_revision_number = serializers.IntegerField(source="delivered_revision.number", default=None)
    overdue = serializers.SerializerMethodField()
    waits_on = serializers.SerializerMethodField()

    class Meta:
        model = TrackRequest
        fields = [
            "id",
            "status",
            "performer",
            "producer",
            "title",
            "brief",
            "track",
            "key",
            "tempo_bpm",
            "due_date",
            "decline_reason",
            "delivered_revision",
            "delivered_revision_number",
            "approved_at",
            "overdue",
            "waits_on",
            "created_at",
            "updated_at",
        ]

    def get_overdue(self, track_request: TrackRequest) -> bool:
        return selectors.request_is_overdue(track_request=track_request)

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="producer | performer | null"))
    def get_waits_on(self, track_request: TrackRequest) -> str | None:
        return selectors.request_waits_on(track_request=track_request)


class RequestPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RequestOutputSerializer(many=True)


def _answer(request: Request, pk: int, *, code: int = status.HTTP_200_OK, **extra: Any) -> Response:
    fresh = selectors.request_get(user=request.user, request_id=pk)
    return Response({**RequestOutputSerializer(fresh).data, **extra}, status=code)


# --- views -------------------------------------------------------------------------------------


class RequestListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="requests_list",
        parameters=[OpenApiParameter("status", str, enum=[choice for choice, _ in RequestStatus.choices])],
        responses={200: RequestPageSerializer},
    )
    def get(self, request: Request) -> Response:
        filters = RequestListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        requests = selectors.request_list(
            user=request_user(request), status=filters.validated_data.get("status")
        )
        paginator = PageNumberPagination100()
        page: Any = paginator.paginate_queryset(requests, request, view=self)
        return paginator.get_paginated_response(RequestOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="requests_create",
        request=RequestCreateInputSerializer,
        responses={201: RequestOutputSerializer, 400: ERROR, 403: ERROR},
    )
    def post(self, request: Request) -> Response:
        serializer = RequestCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = request_services.request_create(
            performer=request_user(request),
            producer_id=data["producer"],
            title=data["title"],
            brief=data["brief"],
            track_id=data.get("track"),
            key=data.get("key") or "",
            tempo_bpm=data.get("tempo_bpm"),
            due_date=data.get("due_date"),
        )
        return _answer(request, created.pk, code=status.HTTP_201_CREATED)


class RequestDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="requests_retrieve", responses={200: RequestOutputSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        return _answer(request, pk)


_STEP_RESPONSES = {200: RequestOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


class RequestAcceptApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(operation_id="requests_accept", request=None, responses=_STEP_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        found = selectors.request_get(user=request.user, request_id=pk)
        request_services.request_accept(user=request_user(request), track_request=found)
        return _answer(request, pk)


class RequestDeclineApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="requests_decline", request=RequestDeclineInputSerializer, responses=_STEP_RESPONSES
    )
    def post(self, request: Request, pk: int) -> Response:
        found = selectors.request_get(user=request.user, request_id=pk)
        serializer = RequestDeclineInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        request_services.request_decline(
            user=request_user(request), track_request=found, reason=serializer.validated_data["reason"]
        )
        return _answer(request, pk)


class RequestDeliverApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="requests_deliver", request=RequestDeliverInputSerializer, responses=_STEP_RESPONSES
    )
    def post(self, request: Request, pk: int) -> Response:
        found = selectors.request_get(user=request.user, request_id=pk)
        serializer = RequestDeliverInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        revision = selectors.revision_get(
            user=request.user, revision_id=serializer.validated_data["revision"]
        )
        request_services.request_deliver(user=request_user(request), track_request=found, revision=revision)
        return _answer(request, pk)


class RequestChangesApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="requests_changes", request=RequestChangesInputSerializer, responses=_STEP_RESPONSES
    )
    def post(self, request: Request, pk: int) -> Response:
        found = selectors.request_get(user=request.user, request_id=pk)
        serializer = RequestChangesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _changed, comment = request_services.request_changes(
            user=request_user(request), track_request=found, body=serializer.validated_data["body"]
        )
        return _answer(request, pk, comment=comment.pk)


class RequestApproveApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(operation_id="requests_approve", request=None, responses=_STEP_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        found = selectors.request_get(user=request.user, request_id=pk)
        request_services.request_approve(user=request_user(request), track_request=found)
        return _answer(request, pk)
