"""Tests of ingest/: export reading."""
