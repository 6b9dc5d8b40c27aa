"""Accounts API: register, token, me, genres, chosen keys. Views validate shapes and call services."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack.api.throttles import AuthThrottle
from backtrack.api.users import request_user
from backtrack.throttling import login_attempt_check, login_failed, signup_attempt_check
from performers import selectors, services
from performers.api.serializers import (
    ChosenKeyOutputSerializer,
    GenreSerializer,
    MeInputSerializer,
    MeOutputSerializer,
    RegisterInputSerializer,
    RegisterOutputSerializer,
    TokenInputSerializer,
    TokenOutputSerializer,
)

ERROR = OpenApiResponse(
    response={"type": "object", "properties": {"detail": {"type": "string"}}}, description="reason"
)


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: RegisterOutputSerializer, 400: ERROR, 429: ERROR},
        operation_id="auth_register",
    )
    def post(self, request: Request) -> Response:
        signup_attempt_check(request=request)
        serializer = RegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        token, _ = Token.objects.get_or_create(user=user)
        body = MeOutputSerializer.from_profile(selectors.profile_get(user=user))
        return Response({**body, "token": token.key}, status=status.HTTP_201_CREATED)


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=TokenInputSerializer,
        responses={200: TokenOutputSerializer, 400: ERROR, 429: ERROR},
        operation_id="auth_token",
    )
    def post(self, request: Request) -> Response:
        serializer = TokenInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        login_attempt_check(request=request, username=username)
        user = authenticate(
            request=request._request, username=username, password=serializer.validated_data["password"]
        )
        if user is None or not user.is_active:
            login_failed(username=username)
            raise ValidationError("wrong username or password")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: MeOutputSerializer}, operation_id="me_retrieve")
    def get(self, request: Request) -> Response:
        return Response(MeOutputSerializer.from_profile(selectors.profile_get(user=request_user(request))))

    @extend_schema(request=MeInputSerializer, responses={200: MeOutputSerializer}, operation_id="me_update")
    def patch(self, request: Request) -> Response:
        serializer = MeInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.profile_update(user=request_user(request), **serializer.validated_data)
        return Response(MeOutputSerializer.from_profile(selectors.profile_get(user=request_user(request))))


class ChosenKeyListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: ChosenKeyOutputSerializer(many=True)}, operation_id="me_chosen_keys")
    def get(self, request: Request) -> Response:
        chosen = selectors.chosen_key_list(performer=request_user(request))
        return Response(ChosenKeyOutputSerializer(chosen, many=True).data)


class GenreListApi(APIView):
    permission_classes = [AllowAny]
    pagination_class = None

    @extend_schema(responses={200: GenreSerializer(many=True)}, operation_id="genres_list")
    def get(self, request: Request) -> Response:
        return Response(GenreSerializer(selectors.genre_list(), many=True).data)
