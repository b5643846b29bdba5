"""Co-attendance graph of members and its network metrics (pure; no servers)."""
