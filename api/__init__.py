"""The Falcon API: app factory, settings, middleware, errors, OpenAPI, CLI."""

__version__ = "0.1.0"
