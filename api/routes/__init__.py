"""Routers of the REST API, included by api/app.py."""
