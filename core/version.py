"""The project's version (packaging, the OpenAPI document, User-Agent, ETags)."""

__version__ = "0.2.0"
