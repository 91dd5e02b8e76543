"""Alerts: new and resolved drift, through an outbox, to Slack and webhooks."""
