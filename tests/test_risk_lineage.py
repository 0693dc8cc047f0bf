"""Column-level lineage (inspector.risk.lineage): tables, exposures, and what is not guessed."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from inspector.risk.lineage import column_uses


def uses(sql: str, dialect: Optional[str] = None) -> Dict[Tuple[Optional[str], str], str]:
    """(table, column) -> exposure of every column the statement uses."""
    lineage = column_uses(sql, dialect)
    assert lineage.error is None, lineage.error
    return {(u.table, u.column): u.exposure for u in lineage.uses}


def test_raw_columns_keep_their_table_through_aliases() -> None:
    """Aliased tables and columns resolve to the schema-qualified table."""
    assert uses("SELECT c.email AS e, c.phone FROM crm.contacts AS c") == {
        ("crm.contacts", "email"): "raw", ("crm.contacts", "phone"): "raw"}


def test_exposures_hashed_aggregated_filter() -> None:
    """md5 is transformed, COUNT DISTINCT aggregated, WHERE and JOIN ON filter."""
    found = uses("SELECT md5(u.email) AS k, COUNT(DISTINCT u.phone) FROM app.users u "
                 "JOIN app.orders o ON o.user_id = u.id WHERE u.ssn IS NOT NULL GROUP BY 1")
    assert found[("app.users", "email")] == "transformed"
    assert found[("app.users", "phone")] == "aggregated"
    assert found[("app.users", "ssn")] == "filter"
    assert found[("app.orders", "user_id")] == "filter"


def test_value_keeping_aggregates_are_raw() -> None:
    """MAX and STRING_AGG show the values themselves."""
    found = uses("SELECT MAX(email), string_agg(name, ',') FROM crm.contacts", "postgres")
    assert found == {("crm.contacts", "email"): "raw", ("crm.contacts", "name"): "raw"}


def test_through_ctes_subqueries_and_unions() -> None:
    """Lineage follows CTEs, derived tables and each branch of a UNION to their tables."""
    found = uses("WITH a AS (SELECT email, phone FROM crm.leads) "
                 "SELECT x.email FROM (SELECT email FROM a) x "
                 "UNION ALL SELECT work_email FROM hr.employees")
    assert found == {("crm.leads", "email"): "raw", ("hr.employees", "work_email"): "raw"}


def test_a_cte_column_nobody_reads_is_not_used() -> None:
    """A CTE's spare column never reaches the document."""
    assert ("crm.leads", "phone") not in uses(
        "WITH a AS (SELECT id, phone FROM crm.leads) SELECT id FROM a")


def test_window_partition_and_case_comparison_are_filters() -> None:
    """A window's PARTITION BY and a CASE comparison do not show the value."""
    found = uses("SELECT ROW_NUMBER() OVER (PARTITION BY email ORDER BY ts) AS n, "
                 "CASE WHEN salary > 10 THEN 'hi' END AS band FROM hr.people")
    assert found[("hr.people", "email")] == "filter"
    assert found[("hr.people", "salary")] == "filter"


def test_stars_are_all_columns_of_their_table() -> None:
    """SELECT * and t.* are uses of '*' of the table; a star over a known subquery expands."""
    assert uses("SELECT * FROM crm.contacts") == {("crm.contacts", "*"): "raw"}
    assert ("crm.contacts", "*") in uses(
        "SELECT c.*, a.name FROM crm.contacts c JOIN crm.accounts a ON a.id = c.account_id")
    assert uses("SELECT * FROM (SELECT email FROM crm.contacts) t") == {
        ("crm.contacts", "email"): "raw"}


def test_unqualified_column_of_a_join_names_its_candidates() -> None:
    """Without a schema the table is not guessed: None, with the candidate tables."""
    lineage = column_uses("SELECT email FROM crm.contacts c JOIN crm.accounts a ON a.id = c.id")
    email = next(u for u in lineage.uses if u.column == "email")
    assert email.table is None
    assert set(email.candidates) == {"crm.contacts", "crm.accounts"}


def test_correlated_subquery_resolves_the_outer_table() -> None:
    """A filtering subquery's columns are filters, the outer reference included."""
    found = uses("SELECT u.name FROM app.users u WHERE EXISTS "
                 "(SELECT 1 FROM crm.blocked b WHERE b.email = u.email)")
    assert found[("app.users", "name")] == "raw"
    assert found[("crm.blocked", "email")] == "filter"
    assert found[("app.users", "email")] == "filter"


def test_unparseable_sql_is_an_error_with_the_reason() -> None:
    """Bad SQL never raises: the parser's reason comes back."""
    lineage = column_uses("SELECT email FROM crm.contacts WHERE (")
    assert lineage.uses == () and lineage.error is not None
    assert "unparseable SQL" in lineage.error
    assert column_uses("hello world").error == "unparseable SQL: not a SQL statement"


def test_names_are_reported_as_written() -> None:
    """T-SQL's case-insensitive names keep their spelling (EmailAddress, not emailaddress)."""
    assert uses("SELECT p.EmailAddress FROM Person.EmailAddress p", "tsql") == {
        ("Person.EmailAddress", "EmailAddress"): "raw"}


def test_several_statements_and_commands() -> None:
    """Statements separated by semicolons are all read; SHOW reads no column."""
    found = uses("SELECT email FROM a.t; SELECT phone FROM a.u")
    assert found == {("a.t", "email"): "raw", ("a.u", "phone"): "raw"}
    assert uses("SHOW search_path") == {}


def test_a_star_over_a_derived_table_with_a_star_keeps_its_named_columns() -> None:
    """SELECT * over (SELECT u.*, o.email ...): all of users, and orders' email as it is used."""
    found = uses("SELECT * FROM (SELECT u.*, o.total, md5(o.email) FROM app.users u "
                 "JOIN app.orders o ON o.user_id = u.id) x")
    assert found[("app.users", "*")] == "raw"
    assert found[("app.orders", "total")] == "raw"
    assert found[("app.orders", "email")] == "transformed"
