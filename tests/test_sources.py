"""Tests of inspector.sources (the data-source report), inspector.redaction and the table format."""

from __future__ import annotations

import json
from typing import List

import pytest

from inspector import DataSource, Document, DocumentInspector, Inspection, Widget
from inspector.formatting import inspection_table, sources_table
from inspector.redaction import REDACTED, redact
from inspector.server import SampleServer
from inspector.sources import analyze_sql, build_report, dialect_for, report_to_dict

CATALOG_PASSWORD = "s3cr3t"  # in the sample catalog's connection string of doc-6 and deck-5


def inspection(document_id: str, *widgets: Widget) -> Inspection:
    """A hand-built inspection of one document with these widgets."""
    return Inspection(Document(document_id, "biDashboard"), (), widgets)


def database(connection: str, sql: str) -> DataSource:
    """A database data source."""
    return DataSource("database", connection=connection, sql=sql)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://report_user:s3cr3t@warehouse.internal:5432/sales",
         f"postgresql://report_user:{REDACTED}@warehouse.internal:5432/sales"),
        ("mysql+pymysql://u:p%40ss@h/db?sslpassword=k&charset=utf8#frag",
         f"mysql+pymysql://u:{REDACTED}@h/db?sslpassword={REDACTED}&charset=utf8#frag"),
        ("host=db user=bob password='s3 cr3t' dbname=sales",
         f"host=db user=bob password={REDACTED} dbname=sales"),
        ("Server=db;Uid=u;Pwd={a;b}}c};Database=d", f"Server=db;Uid=u;Pwd={REDACTED};Database=d"),
        ("jdbc:sqlserver://h:1433;databaseName=x;password=secret",
         f"jdbc:sqlserver://h:1433;databaseName=x;password={REDACTED}"),
        ("https://sheets.example.com/d/1?access_token=abc&range=A1",
         f"https://sheets.example.com/d/1?access_token={REDACTED}&range=A1"),
    ],
)
def test_redact_hides_passwords_and_keeps_the_rest(text: str, expected: str) -> None:
    """URL user info, query secrets and key-value DSN passwords are replaced, nothing else."""
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://warehouse.internal:5432/sales",
        "mysql://ops-reader@mysql-ops.internal:3306/logistics",
        "snowflake://acme/DB/PUBLIC?warehouse=BI_WH&role=ANALYST",
        "https://sheets.example.com/d/8f2a?tokenizer=x",
        "postgresql://user:@host/db",
        "sqlite:///reports.db",
    ],
)
def test_redact_leaves_text_without_secrets_alone(text: str) -> None:
    """A connection string with no password comes back unchanged."""
    assert redact(text) == text


def test_tables_of_a_join_are_schema_qualified_and_sorted() -> None:
    """Each table a statement reads, qualified as written, once, sorted."""
    statement = analyze_sql(
        "SELECT a.name FROM sales.orders o JOIN sales.accounts a ON a.id = o.account_id "
        "JOIN sales.orders o2 ON o2.id = o.id WHERE a.id IN (SELECT id FROM crm.vip)",
        "postgres",
    )
    assert statement.error is None
    assert statement.tables == ("crm.vip", "sales.accounts", "sales.orders")
    assert statement.writes == ()


def test_common_table_expressions_are_not_tables() -> None:
    """A CTE name used in FROM is left out; a real table of the same name in a schema is kept."""
    statement = analyze_sql(
        "WITH rev AS (SELECT * FROM ledger.revenue_lines), cogs AS (SELECT * FROM "
        "ledger.cogs_lines) SELECT * FROM rev JOIN cogs USING (q) JOIN archive.rev USING (q)"
    )
    assert statement.tables == ("archive.rev", "ledger.cogs_lines", "ledger.revenue_lines")


def test_three_part_names_and_dialect_syntax() -> None:
    """Snowflake catalog.schema.table names survive, parsed in the connection's dialect."""
    connection = "snowflake://acme-analytics.eu-west-1/MARKETING_DB/PUBLIC?warehouse=BI_WH"
    assert dialect_for(connection) == "snowflake"
    statement = analyze_sql(
        "SELECT c.name, SUM(s.spend) FROM MARKETING_DB.PUBLIC.AD_SPEND s JOIN "
        "MARKETING_DB.PUBLIC.CAMPAIGNS c ON c.id = s.campaign_id "
        "WHERE s.day >= DATEADD(day, -30, CURRENT_DATE()) GROUP BY c.name",
        dialect_for(connection),
    )
    assert statement.tables == ("MARKETING_DB.PUBLIC.AD_SPEND", "MARKETING_DB.PUBLIC.CAMPAIGNS")


def test_dialect_comes_from_the_scheme() -> None:
    """The URL scheme (without +driver) picks the sqlglot dialect; an unknown one picks none."""
    assert dialect_for("postgresql+psycopg://h/db") == "postgres"
    assert dialect_for("mysql://h/db") == "mysql"
    assert dialect_for("mssql+pyodbc://h/db") == "tsql"
    assert dialect_for("jdbc:sqlserver://h:1433") == "tsql"
    assert dialect_for("nosuchdb://h/db") is None
    assert dialect_for("host=db dbname=x") is None


def test_written_tables_are_reported_apart_from_read_ones() -> None:
    """INSERT ... SELECT: the target is in writes, the source in tables."""
    statement = analyze_sql("INSERT INTO audit.copy (a) SELECT a FROM sales.orders")
    assert statement.tables == ("sales.orders",)
    assert statement.writes == ("audit.copy",)


@pytest.mark.parametrize(
    "sql", ["SELECT FROM WHERE", "SELECT 'unterminated", "hello world", "", "SELECT (1"]
)
def test_unparseable_sql_is_reported_not_raised(sql: str) -> None:
    """SQL that cannot be parsed gives an error of one line and no tables."""
    statement = analyze_sql(sql, "postgres")
    assert statement.error is not None and statement.error.startswith("unparseable SQL")
    assert "\n" not in statement.error
    assert statement.tables == ()


def test_report_groups_statements_by_source_with_their_users() -> None:
    """One source per connection; each statement once, with every widget that runs it."""
    warehouse = "postgresql://warehouse/sales"
    orders = "SELECT * FROM sales.orders"
    report = build_report([
        inspection(
            "doc-a",
            Widget("a/w1", "chart", data_sources=(database(warehouse, orders),)),
            Widget("a/w2", "table", data_sources=(
                database(warehouse, "SELECT * FROM sales.accounts"),
                DataSource("spreadsheet", url="https://sheets/1", range="A1:B2"),
            )),
            Widget("a/w3", "label"),
        ),
        inspection("doc-b", Widget("b/w1", "chart", data_sources=(database(warehouse, orders),))),
    ])
    assert report.documents == ("doc-a", "doc-b")
    assert [(s.kind, s.location) for s in report.sources] == [
        ("database", warehouse), ("spreadsheet", "https://sheets/1")
    ]
    db, sheet = report.sources
    assert db.documents == ("doc-a", "doc-b")
    assert db.widgets == ("a/w1", "a/w2", "b/w1")
    assert [(s.sql, s.widgets) for s in db.statements] == [
        (orders, ("a/w1", "b/w1")), ("SELECT * FROM sales.accounts", ("a/w2",))
    ]
    assert db.tables == ("sales.accounts", "sales.orders")
    assert (sheet.ranges, sheet.widgets, sheet.statements) == (("A1:B2",), ("a/w2",), ())


def test_sources_differing_only_in_password_are_one_redacted_source() -> None:
    """Grouping is by the redacted connection, so no secret is in the report at all."""
    report = build_report([inspection(
        "doc-a",
        Widget("w1", "chart", data_sources=(database("postgresql://u:one@h/db", "SELECT 1"),)),
        Widget("w2", "chart", data_sources=(database("postgresql://u:two@h/db", "SELECT 2"),)),
    )])
    assert [s.connection for s in report.sources] == [f"postgresql://u:{REDACTED}@h/db"]
    text = json.dumps(report_to_dict(report))
    assert "one" not in text and "two" not in text


def test_report_dict_is_json_with_every_field() -> None:
    """report_to_dict gives plain JSON types with the documented keys."""
    report = build_report([inspection(
        "doc-a", Widget("w1", "chart", data_sources=(database("pg://h/db", "SELECT (1"),))
    )])
    data = json.loads(json.dumps(report_to_dict(report)))
    assert data["documents"] == ["doc-a"]
    (source,) = data["sources"]
    assert set(source) == {
        "kind", "connection", "url", "statements", "ranges", "documents", "widgets"
    }
    (statement,) = source["statements"]
    assert set(statement) == {"sql", "tables", "writes", "error", "widgets"}
    assert statement["error"].startswith("unparseable SQL")


def test_catalog_report_redacts_the_password_and_reads_tables(sample_server: SampleServer) -> None:
    """doc-6 of the sample catalog: its password never appears; its CTE is not a table."""
    with DocumentInspector(sample_server.url) as inspector:
        inspections = list(inspector.inspect_many(["doc-1", "doc-6"]))
    assert CATALOG_PASSWORD in repr(
        [s.connection for w in inspections[1].widgets for s in w.data_sources]
    )  # the data itself holds it: the report must hide it
    report = build_report(inspections)
    text = json.dumps(report_to_dict(report)) + sources_table(report)
    text += "".join(inspection_table(i) for i in inspections)
    assert CATALOG_PASSWORD not in text
    (warehouse,) = [s for s in report.sources if s.documents == ("doc-6",)]
    assert warehouse.connection == (
        f"postgresql://report_user:{REDACTED}@warehouse.internal:5432/sales"
    )
    aging = warehouse.statements[0]
    assert aging.sql.startswith("WITH open_invoices AS")
    assert aging.tables == ("billing.invoices",)  # not the CTE open_invoices


def test_inspection_table_shows_widgets_by_type_and_sources() -> None:
    """The table of one document: a header, a count per widget type, a row per source."""
    text = inspection_table(Inspection(
        Document("doc-a", "slide", name="Deck", owner="ops"),
        (),
        (
            Widget("w1", "chart", data_sources=(database("pg://u:pw@h/db", "SELECT 1 FROM t"),)),
            Widget("w2", "chart"),
            Widget("w3", "label"),
        ),
    ))
    lines = text.splitlines()
    assert lines[0] == "doc-a  Deck"
    assert lines[1] == "type slide, owner ops, 0 containers, 3 widgets"
    assert "chart            2  w1, w2" in lines
    assert "label            1  w3" in lines
    (source_row,) = [line for line in lines if line.startswith("database")]
    assert source_row.split() == ["database", f"pg://u:{REDACTED}@h/db", "t", "w1"]


def test_long_id_lists_are_cut_in_tables() -> None:
    """A cell lists a few ids, then how many more there are."""
    widgets: List[Widget] = [Widget(f"w{i}", "chart") for i in range(10)]
    text = inspection_table(inspection("doc-a", *widgets))
    assert "w0, w1, w2, w3, w4, w5 (+4 more)" in text



def test_tables_escape_what_would_drive_a_terminal() -> None:
    """A server's escape sequences and line breaks reach the table escaped, never raw."""
    from inspector import Document, Inspection
    from inspector.formatting import inspection_table

    document = Document(id="d\x1b[2J", type="biDashboard", name="x\rINJECTED\u202e",
                        widget_container_ids=())
    table = inspection_table(Inspection(document))
    assert "\x1b" not in table and "\r" not in table and "\u202e" not in table
    assert table.startswith("d\\x1b[2J  x\\rINJECTED\\u202e\n")
