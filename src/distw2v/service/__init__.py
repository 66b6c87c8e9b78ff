"""The training service: REST API, job store, job runner and web page."""
