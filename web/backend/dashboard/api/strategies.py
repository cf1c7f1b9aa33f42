"""Placeholder until this area is written (session in progress)."""

from rest_framework.views import APIView


class StrategyList(APIView):
    pass
