"""The service from a terminal (issue 15, item 6): offline /docs, `similar`/`analogy` on a
service model, `download`, failure reasons in `jobs`, 401 hints, and the REST `a b c` form."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

URL_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


def _page_urls(html: str) -> list[str]:
    return [a or b for a, b in URL_ATTRIBUTE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(service_server, page: str) -> None:
    server = service_server()
    response = server.http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower() and "googleapis" not in html
    urls = _page_urls(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert len(scripts) == 1, urls  # swagger-ui-bundle.js or redoc.standalone.js
    assert "/openapi.json" in urls or 'spec-url="/openapi.json"' in html
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # this server, no host
        asset = server.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url  # the real file, not an error page
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        elif url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), url
    if page == "/docs":
        assert any(u.endswith("/swagger-ui.css") for u in urls)
        bundle = server.http.get(scripts[0]).text
        assert "SwaggerUIBundle" in bundle  # the page's script defines what the page calls
        # Swagger UI 5 renders the OpenAPI 3.1 document FastAPI writes (4.x cannot)
        assert server.http.get("/openapi.json").json()["openapi"].startswith("3.1")
        assert re.search(r'"5\.\d+\.\d+"', bundle)
        assert server.http.get("/docs/oauth2-redirect").status_code == 200


def test_docs_routes_stay_out_of_the_schema(service_server) -> None:
    server = service_server()
    paths = server.http.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
    missing = server.http.get("/docs/assets/no-such-file.js")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "there is no such route."}
