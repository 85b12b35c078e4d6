"""The assembly: the app factory (``api.app``) and the command line (``python -m api``).

The top floor: it imports the resources, the HTTP toolkit and the stores and
puts them together; nothing imports it.
"""
