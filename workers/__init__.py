"""The daemons beside the web process: push, collatz, webhooks (a package each)."""
