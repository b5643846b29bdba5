"""Request and response schemas of the API, one module per router (what OpenAPI publishes).

The analytics documents themselves are defined once, in infra/documents.py, for the
pipeline that writes them and the routes that serve them; the modules here re-export them.
"""
