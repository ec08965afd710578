"""Prometheus metrics and bounded rings of recent request and backend traces."""
