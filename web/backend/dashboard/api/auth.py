"""Optional API token: with ``DJANGO_API_TOKEN`` set, every request must carry it.

Clients send ``Authorization: Bearer <token>`` (``Token <token>`` is accepted too). Without
the setting the API is open, which suits a dashboard bound to localhost; a token sent to it
then is refused, as the two sides disagree (a client that means to authenticate would
otherwise post with no protection it knows of).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions, permissions


class TokenUser:
    """The caller who presented the right token."""

    is_authenticated = True
    username = "token"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Checks ``Authorization: Bearer <token>`` against ``DJANGO_API_TOKEN``."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("malformed Authorization header")
        expected = settings.API_TOKEN
        if expected is None:  # the client expects a token the server does not have
            raise exceptions.AuthenticationFailed(
                "this server has no API token (DJANGO_API_TOKEN is not set): send no "
                "Authorization header, or set the same token on both sides"
            )
        if not hmac.compare_digest(header[1], expected):
            raise exceptions.AuthenticationFailed("invalid API token")
        return TokenUser(), header[1]

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'  # makes a missing token a 401, not a 403


class HasApiToken(permissions.BasePermission):
    """Open when no token is configured; otherwise only token holders."""

    message = "this API needs a token: send Authorization: Bearer <DJANGO_API_TOKEN>"

    def has_permission(self, request, view) -> bool:
        if settings.API_TOKEN is None:
            return True
        return isinstance(request.user, TokenUser)
