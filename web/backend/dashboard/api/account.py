"""Placeholder until this area is written (session in progress)."""

from rest_framework.views import APIView


class PortfolioView(APIView):
    pass


class ConnectionView(APIView):
    pass


class HealthView(APIView):
    pass
