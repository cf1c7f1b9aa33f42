"""Placeholder until this area is written (session in progress)."""

from rest_framework.views import APIView


class OrderListCreate(APIView):
    pass


class OrderSummary(APIView):
    pass


class OrderDetail(APIView):
    pass
