"""``GET /metrics``: Prometheus text exposition of the printers, the daemon, the queue and the
history (docs/api.md). No prometheus_client in the daemon: the format is a few lines of text."""
