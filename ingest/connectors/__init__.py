"""Platform API connectors (Luma, Eventbrite) and the sync that lands and normalizes their data.

Plain Python without Dagster, shared by the import assets and the `community` CLI.
"""
