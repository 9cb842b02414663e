"""Email alerts: who gets a digest and when (policy), what it says (message), and how it
leaves (delivery: SMTP, or an outbox folder when no server is configured)."""
