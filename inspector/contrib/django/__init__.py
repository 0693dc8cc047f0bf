"""The Django app: ``INSTALLED_APPS += ["inspector.contrib.django"]``.

Settings (read each time they are needed, so ``override_settings`` works)::

    DOCUMENT_INSPECTOR = {
        "URL": "wss://documents.example.com/api",   # required
        "TOKEN": os.environ.get("DOCUMENTS_TOKEN"),  # optional
        "TIMEOUT": 30.0,                             # optional, and the other options below
    }

Every key but ``URL`` is optional and names an argument of :class:`~inspector.DocumentInspector`
(or of the :class:`~inspector.Connection` it opens) in capitals: ``TOKEN``, ``HEADERS``,
``TIMEOUT``, ``REQUEST_TIMEOUT``, ``CONNECT_TIMEOUT``, ``RETRIES``, ``PING_INTERVAL``, ... A key
that names no argument is an error, so that a typo is not silently ignored.

What it gives:

* ``python manage.py inspect_documents DOC_ID... | --all | --from-file FILE`` with
  ``--format json|jsonl|table`` and ``--sources`` (the data-source report);
* :func:`inspector.contrib.django.settings.open_inspector` for your own code: a new
  :class:`~inspector.DocumentInspector` from the settings, to close when done (use ``with``).

Needs Django (``pip install 'document-inspector[django]'``).
"""
