"""The one check of an error answer: RFC 9457 problem details, no traceback."""

from web.errors import status_title


def assert_problem(result, status: int) -> dict:
    """``result`` (a falcon TestClient Result) is a ``status`` problem; its body.

    Checks the media type, every required member (``title`` is the status's
    RFC 9110 phrase for ``type`` about:blank), and that no traceback leaked.
    """
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    body = result.json
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] == status_title(status)
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in result.text
    return body
