"""Snapshots: running scans, push and export, and the content-addressed store behind them."""
