"""Persistent homology of the member graph under bounded cost (pure; no servers)."""
