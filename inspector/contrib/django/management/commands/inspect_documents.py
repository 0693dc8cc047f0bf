"""``manage.py inspect_documents``: the command line's ``inspect`` and ``sources``, in Django.

The server, token and timeouts come from ``settings.DOCUMENT_INSPECTOR``. Output goes to the
command's stdout, each failed document to its stderr (id and reason), as in the command line.
One connection serves the whole run and is closed at its end, whatever happens.

With ``--db DB`` (or ``--db`` alone, for ``settings.INVENTORY``: a SQLite path or a SQLAlchemy
URL) the documents are scanned into the inventory instead, and the run report is printed.

Exit status (as ``manage.py`` reports it): 0 all succeeded; a ``CommandError`` with return code 1
when some documents failed (the others are printed first), 2 for a usage error or a connection
that could not be opened or was lost. There is no progress bar: management commands mostly run
unattended, and one would have to bypass the command's own stderr.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.management.base import (  # type: ignore[import-untyped]
    BaseCommand,
    CommandError,
    CommandParser,
)

from inspector.cli import (
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    INSPECT_FORMATS,
    UsageError,
    inspect_documents,
    read_document_ids,
)
from inspector.client import DocumentInspector
from inspector.contrib.django.settings import inspector_options, open_inspector
from inspector.exceptions import InspectorError

# ``--db`` given without a value: the inventory is settings.INVENTORY.
_FROM_SETTINGS = "\0settings.INVENTORY"


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no types
    help = (
        "Inspect documents through the documents API that settings.DOCUMENT_INSPECTOR names, "
        "and print them (or, with --sources, the report of their data sources)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("document_ids", nargs="*", metavar="DOC_ID",
                            help="documents to inspect")
        parser.add_argument("--all", action="store_true",
                            help="also every document the server lists (ListDocuments)")
        parser.add_argument("--from-file", metavar="FILE",
                            help="also the ids in FILE, one a line ('-': stdin)")
        parser.add_argument(
            "--format", choices=INSPECT_FORMATS, default=None,
            help="json (the default for one DOC_ID, and for --sources), jsonl (one line per "
            "document; the default otherwise) or table (for people)",
        )
        parser.add_argument("--sources", action="store_true",
                            help="print the data-source report instead of the inspections")
        parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                            help="seconds per document (default: the setting's TIMEOUT)")
        parser.add_argument(
            "--db", nargs="?", const=_FROM_SETTINGS, default=None, metavar="DB",
            help="scan the documents into this inventory (a SQLite path or a SQLAlchemy "
            "URL; --db alone: settings.INVENTORY) and print the run report",
        )
        parser.add_argument("--full", action="store_true",
                            help="with --db: inspect every document whole, even unchanged")

    def handle(self, *args: Any, **options: Any) -> None:
        document_ids = list(options["document_ids"])
        list_all: bool = options["all"]
        from_file = options["from_file"]
        report = "sources" if options["sources"] else "inspect"
        if not document_ids and not list_all and from_file is None:
            raise CommandError("name at least one DOC_ID, or give --all or --from-file",
                               returncode=EXIT_USAGE)
        if options["db"] is not None:
            self._scan(options["db"], document_ids, list_all, from_file, options)
            return
        single = len(document_ids) == 1 and not list_all and from_file is None
        output_format = options["format"] or ("json" if single or options["sources"] else "jsonl")
        if report == "sources" and output_format == "jsonl":
            raise CommandError("--sources prints one report: use --format json or table",
                               returncode=EXIT_USAGE)
        inspector_options()  # a misconfiguration is ImproperlyConfigured, before anything runs
        overrides = {} if options["timeout"] is None else {"timeout": options["timeout"]}

        def open_configured() -> DocumentInspector:
            return open_inspector(**overrides)

        try:
            run = inspect_documents(
                open_configured,
                read_document_ids(document_ids, from_file),
                list_all=list_all,
                report=report,
                output_format=output_format,
                single=single,
                out=self.stdout,
                err=self.stderr,
            )
        except UsageError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        except InspectorError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", returncode=EXIT_USAGE) from exc
        if run.failures:
            failed = ", ".join(document_id for document_id, _ in run.failures)
            raise CommandError(
                f"{len(run.failures)} of {len(run.document_ids)} documents failed: {failed}",
                returncode=run.exit_status,
            )

    def _scan(self, db: str, document_ids: List[str], list_all: bool,
              from_file: Optional[str], options: Dict[str, Any]) -> None:
        """``--db``: scan into the inventory, print the run report (``--format json``: JSON)."""
        from inspector.inventory.inventory import Inventory
        from inspector.inventory.report import run_report

        if db is _FROM_SETTINGS:
            configured = getattr(settings, "INVENTORY", None)
            if not isinstance(configured, str) or not configured:
                raise ImproperlyConfigured(
                    'settings.INVENTORY is not set: give --db DB, or set INVENTORY = '
                    '"inventory.db" (a SQLite path or a SQLAlchemy URL)')
            db = configured
        inspector_options()  # a misconfiguration is ImproperlyConfigured, before anything runs
        overrides = {} if options["timeout"] is None else {"timeout": options["timeout"]}
        try:
            ids = read_document_ids(document_ids, from_file)
            with Inventory(db) as inventory, open_inspector(**overrides) as inspector:
                run = inventory.scan(inspector, ids, list_all=list_all, full=options["full"])
                failures = inventory.failures(run.id)
                run_report(run, failures, "json" if options["format"] == "json" else "table",
                           self.stdout)
        except UsageError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        except InspectorError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", returncode=EXIT_USAGE) from exc
        if failures:
            raise CommandError(
                f"{len(failures)} of {run.targets} documents failed: "
                + ", ".join(document_id for document_id, _ in failures),
                returncode=EXIT_SOME_FAILED,
            )
