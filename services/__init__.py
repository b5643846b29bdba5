"""Use cases: each workflow in one place, called by the API routes, the assets and the CLI.

Plain functions and classes that take their stores and settings as arguments; no Dagster
and no FastAPI here.
"""
