"""How the OpenAPI schema (drf-spectacular) describes the API token."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <DJANGO_API_TOKEN>``, so the docs page's Authorize button
    sends it."""

    target_class = "dashboard.api.auth.BearerTokenAuthentication"
    name = "BearerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
