"""Webhooks: inbound sources and handlers with their runner, the outbound sender.

``python -m workers.webhooks.runner`` runs the handlers of received
deliveries; the push worker uses ``sender.py`` for subscriptions.
"""
