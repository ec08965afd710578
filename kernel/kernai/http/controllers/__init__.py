"""The core's own routes: health and version, API keys, metrics, traces and logs."""
