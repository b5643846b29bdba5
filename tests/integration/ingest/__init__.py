"""Tests of ingest/: connectors against the fakes, the landing store."""
