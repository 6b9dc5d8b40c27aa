import warnings

import pytest
import yaml
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_is_valid_and_generated_without_warnings(capsys):
    # when
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = SchemaGenerator().get_schema(request=None, public=True)

    # then: drf-spectacular reports problems on stderr; there must be none
    captured = capsys.readouterr()
    assert "Warning" not in captured.err, captured.err
    assert "Error" not in captured.err, captured.err
    validate(schema)
    paths = schema["paths"]
    for path in (
        "/api/auth/register/",
        "/api/auth/token/",
        "/api/me/",
        "/api/tracks/",
        "/api/tracks/{id}/",
        "/api/tracks/{id}/revisions/",
        "/api/tracks/{id}/key-suggestions/",
        "/api/renders/",
        "/api/renders/{id}/",
        "/api/renders/{id}/download/",
        "/api/tracks/{id}/comments/",
        "/api/comments/{id}/resolve/",
        "/api/notifications/",
    ):
        assert path in paths, path


def test_the_schema_endpoint_serves_yaml_and_the_docs_page_loads(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert schema["openapi"].startswith("3.")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
