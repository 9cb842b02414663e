"""Email alerts: policy, message building and delivery (coming with the alerting issue)."""
