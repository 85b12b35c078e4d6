"""The HTTP toolkit: problem errors, middleware, validation, paging, OpenAPI.

Falcon and marshmallow live here and in ``resources``; nothing below (``db``,
``core``) and nothing beside (``workers``) imports them.
"""
