"""The dashboard's REST API (Django REST Framework)."""
