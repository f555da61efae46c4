"""Django (threads): a view that hands work to FastWorker, in one file.

Run (from the repository root, with a control plane running)::

    FASTWORKER_URL=ws://127.0.0.1:8765 python -m examples.frameworks.django_app runserver --noreload

In a real project the ``fw`` line goes in a module of your app (e.g. ``myapp/tasks_client.py``)
and the views import it.
"""

from __future__ import annotations

import os
import sys

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

import fastworker

from .tasks import slugify

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="example-only",
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

# One blocking client for the process, shared by every request thread.
fw = fastworker.connect(os.environ.get("FASTWORKER_URL"), lazy=True)


def slug(request: HttpRequest) -> JsonResponse:
    """Run a task and wait for its value, at most 10 s."""
    text = request.GET.get("text", "")
    try:
        value = fw.call(slugify, text, timeout=10.0)
    except fastworker.ResultTimeout:
        return JsonResponse({"error": "timed out"}, status=504)
    return JsonResponse({"slug": value})


urlpatterns = [path("slug", slug)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line
    from django.core.servers.basehttp import WSGIServer

    # runserver listens with a backlog of 10: a burst of connections past it waits for
    # TCP retransmits (1 s, 3 s, 7 s...). Production servers (gunicorn, uwsgi) don't.
    WSGIServer.request_queue_size = 128

    execute_from_command_line(sys.argv)
