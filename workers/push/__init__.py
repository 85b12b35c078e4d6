"""The push worker: every note change forwarded to ZeroMQ, SSE and webhooks.

Start at ``worker.py``; ``python -m workers.push`` runs it.
"""
