"""What gunicorn serves: ``api.wsgi:app``, the app for the environment's settings."""

from api.app import get_app

app = get_app()
