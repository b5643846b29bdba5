"""Application services: use cases shared by the API, the CLI and the assets."""
