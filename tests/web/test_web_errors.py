"""The API's error shape, for URLs nothing serves."""


def test_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"status": 404, "code": "not_found", "message": "no such URL: /api/no-such-thing/"}
    }
