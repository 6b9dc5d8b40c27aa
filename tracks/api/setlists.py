"""Setlists over the API: build, reorder, share (a revocable read-only link) and export."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backtrack import http_ranges
from backtrack.api.parsers import JSONParser
from backtrack.api.users import request_user
from tracks import selectors, services
from tracks.api.views import ERROR
from tracks.models import Setlist, SetlistExport, SetlistExportStatus, SetlistItem

# --- serializers -------------------------------------------------------------------------------------------


def _absolute(request: Any, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class SetlistItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    track = serializers.IntegerField(source="track_id", allow_null=True)
    title = serializers.CharField()
    settings = serializers.JSONField()
    gap_s = serializers.FloatField()
    available = serializers.SerializerMethodField()
    duration_s = serializers.SerializerMethodField()

    def get_available(self, item: SetlistItem) -> bool:
        return selectors.setlist_item_revision(item=item) is not None

    def get_duration_s(self, item: SetlistItem) -> float:
        return round(selectors.setlist_item_duration_s(item=item), 1)


class SetlistOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    items = SetlistItemOutputSerializer(many=True, source="items.all")
    share_url = serializers.SerializerMethodField()
    duration_s = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_share_url(self, setlist: Setlist) -> str | None:
        if not setlist.share_token:
            return None
        path = reverse("tracks:setlist-shared", kwargs={"token": setlist.share_token})
        return _absolute(self.context.get("request"), path)

    def get_duration_s(self, setlist: Setlist) -> float:
        return round(selectors.setlist_duration_s(setlist=setlist), 1)


class SetlistInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)


class SetlistItemInputSerializer(serializers.Serializer):
    track = serializers.IntegerField()
    settings = serializers.JSONField(required=False, default=dict)
    gap_s = serializers.FloatField(required=False, default=0.0)


class SetlistItemUpdateInputSerializer(serializers.Serializer):
    position = serializers.IntegerField(required=False)
    settings = serializers.JSONField(required=False)
    gap_s = serializers.FloatField(required=False)


class SetlistExportInputSerializer(serializers.Serializer):
    format = serializers.CharField(help_text='"zip" (numbered MP3s and setlist.m3u8) or "continuous"')


class SetlistExportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    setlist = serializers.IntegerField(source="setlist_id")
    format = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.CharField(help_text='"3 of 8 songs"')
    error = serializers.CharField()
    download_url = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, export: SetlistExport) -> str | None:
        if export.status != SetlistExportStatus.DONE or not export.file:
            return None
        path = reverse("api-setlist-export-download", kwargs={"pk": export.pk})
        return _absolute(self.context.get("request"), path)


def _setlist_body(request: Request, setlist: Setlist) -> dict[str, Any]:
    fresh = selectors.setlist_get(user=request.user, setlist_id=setlist.pk)
    return SetlistOutputSerializer(fresh, context={"request": request}).data


# --- views ----------------------------------------------------------------------------------------------


class SetlistListCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(operation_id="setlists_list", responses={200: SetlistOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        setlists = selectors.setlist_list(user=request_user(request))
        return Response(SetlistOutputSerializer(setlists, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="setlists_create",
        request=SetlistInputSerializer,
        responses={201: SetlistOutputSerializer, 400: ERROR},
    )
    def post(self, request: Request) -> Response:
        serializer = SetlistInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        setlist = services.setlist_create(user=request_user(request), name=serializer.validated_data["name"])
        return Response(_setlist_body(request, setlist), status=status.HTTP_201_CREATED)


class SetlistDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(operation_id="setlists_retrieve", responses={200: SetlistOutputSerializer, 404: ERROR})
    def get(self, request: Request, pk: int) -> Response:
        return Response(_setlist_body(request, selectors.setlist_get(user=request.user, setlist_id=pk)))

    @extend_schema(
        operation_id="setlists_update",
        request=SetlistInputSerializer,
        responses={200: SetlistOutputSerializer, 400: ERROR, 404: ERROR},
    )
    def patch(self, request: Request, pk: int) -> Response:
        setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
        serializer = SetlistInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.setlist_update(setlist=setlist, name=serializer.validated_data["name"])
        return Response(_setlist_body(request, setlist))

    @extend_schema(operation_id="setlists_destroy", responses={204: None, 404: ERROR})
    def delete(self, request: Request, pk: int) -> Response:
        services.setlist_delete(setlist=selectors.setlist_get(user=request.user, setlist_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SetlistItemCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="setlists_items_create",
        request=SetlistItemInputSerializer,
        responses={201: SetlistItemOutputSerializer, 400: ERROR, 404: ERROR},
        description="Append a song (refused over 40 songs or 4 hours, or for a track you may not see).",
    )
    def post(self, request: Request, pk: int) -> Response:
        setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
        serializer = SetlistItemInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = services.setlist_item_add(
            setlist=setlist, track_id=data["track"], settings=data["settings"], gap_s=data["gap_s"]
        )
        return Response(SetlistItemOutputSerializer(item).data, status=status.HTTP_201_CREATED)


def _item(request: Request, pk: int, item_id: int) -> SetlistItem:
    setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
    item = next((item for item in setlist.items.all() if item.pk == item_id), None)
    if item is None:
        raise Http404("no such song in this setlist")
    return item


class SetlistItemDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="setlists_items_update",
        request=SetlistItemUpdateInputSerializer,
        responses={200: SetlistItemOutputSerializer, 400: ERROR, 404: ERROR},
        description="Move the song to `position` (1-based; the others shift), change its gap or settings.",
    )
    def patch(self, request: Request, pk: int, item_id: int) -> Response:
        item = _item(request, pk, item_id)
        serializer = SetlistItemUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = services.setlist_item_update(item=item, **serializer.validated_data)
        return Response(SetlistItemOutputSerializer(item).data)

    @extend_schema(operation_id="setlists_items_destroy", responses={204: None, 404: ERROR})
    def delete(self, request: Request, pk: int, item_id: int) -> Response:
        services.setlist_item_delete(item=_item(request, pk, item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SetlistShareApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="setlists_share_create", request=None, responses={200: SetlistOutputSerializer}
    )
    def post(self, request: Request, pk: int) -> Response:
        setlist = services.setlist_share_renew(
            setlist=selectors.setlist_get(user=request.user, setlist_id=pk)
        )
        return Response(_setlist_body(request, setlist))

    @extend_schema(operation_id="setlists_share_destroy", responses={204: None, 404: ERROR})
    def delete(self, request: Request, pk: int) -> Response:
        services.setlist_share_revoke(setlist=selectors.setlist_get(user=request.user, setlist_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SetlistExportCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="setlists_export",
        request=SetlistExportInputSerializer,
        responses={202: SetlistExportOutputSerializer, 400: ERROR, 404: ERROR},
    )
    def post(self, request: Request, pk: int) -> Response:
        setlist = selectors.setlist_get(user=request.user, setlist_id=pk)
        serializer = SetlistExportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = services.setlist_export_request(
            setlist=setlist, user=request_user(request), export_format=serializer.validated_data["format"]
        )
        body = SetlistExportOutputSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class SetlistExportDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="setlist_exports_retrieve", responses={200: SetlistExportOutputSerializer})
    def get(self, request: Request, pk: int) -> Response:
        export = selectors.setlist_export_get(user=request.user, export_id=pk)
        return Response(SetlistExportOutputSerializer(export, context={"request": request}).data)


class SetlistExportDownloadApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="setlist_exports_download",
        responses={
            200: OpenApiResponse(response=OpenApiTypes.BINARY, description="the ZIP or MP3"),
            404: ERROR,
        },
    )
    def get(self, request: Request, pk: int) -> Any:
        export = selectors.setlist_export_get(user=request.user, export_id=pk)
        if export.status != SetlistExportStatus.DONE or not export.file:
            raise Http404("the export is not ready")
        is_zip = export.format == "zip"
        name = selectors.setlist_song_filename(number=0, title=export.setlist.name, key="", bpm=None)[3:]
        try:
            response = http_ranges.stored_file_response(
                export.file,
                range_header=request.headers.get("Range"),
                content_type="application/zip" if is_zip else "audio/mpeg",
                filename=name.removesuffix(".mp3") + (".zip" if is_zip else ".mp3"),
                as_attachment=True,
            )
        except OSError as exc:
            raise Http404("the export is gone; export the setlist again") from exc
        response["X-Content-Type-Options"] = "nosniff"
        return response
