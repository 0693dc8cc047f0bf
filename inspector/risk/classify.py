"""Which personal-data category a column holds, how sure that is, and why.

Pure functions over names and rules (:mod:`inspector.risk.rules`); no SQL here. The column's
name is split into words and matched against each rule's names as the name's last words, the
longest match winning; a table's name can make a rule apply (``name`` in ``employees``).
:func:`findings_for` turns the lineage of one statement into findings.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple

import attrs

from inspector.risk.findings import (
    ALL_COLUMNS,
    UNKNOWN_CATEGORY,
    Finding,
    StatementLineage,
)
from inspector.risk.rules import Rule, RuleSet, Words, words

__all__ = ["Classification", "Classifier", "PEOPLE_TABLE_WORDS"]

# Tables whose name says they hold people: a SELECT * over them weighs more.
PEOPLE_TABLE_WORDS = frozenset({
    "employee", "employees", "user", "users", "customer", "customers", "contact", "contacts",
    "person", "persons", "people", "patient", "patients", "member", "members", "candidate",
    "candidates", "applicant", "applicants", "staff", "student", "students", "subscriber",
    "subscribers", "lead", "leads", "payroll", "accounts", "account", "visitors", "visitor",
})

_MAX_REMEMBERED = 100_000  # names remembered; each is a few hundred bytes
_UNPARSEABLE_CONFIDENCE = 0.3
_STAR_CONFIDENCE = 0.3
_STAR_OVER_PEOPLE_CONFIDENCE = 0.6


@attrs.frozen
class Classification:
    """A column's category by its name.

    Attributes:
        category: The personal-data category.
        confidence: From 0 to 1.
        evidence: The rule and the words that matched.
        masked: The name says the value is stored hashed or masked (``email_sha256``).
    """

    category: str
    confidence: float
    evidence: Tuple[str, ...]
    masked: bool = False


class Classifier:
    """Classifies column names by a rule set; remembers each name it has seen.

    Args:
        rules: The rule set.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        # Rules indexed by the last word of each of their names, for one lookup per column.
        self._by_last_word: Dict[str, List[Tuple[Rule, Words, bool]]] = {}
        for rule in rules.rules:
            for name in rule.names:
                self._by_last_word.setdefault(name[-1], []).append((rule, name, False))
            for name in rule.whole_names:
                self._by_last_word.setdefault(name[-1], []).append((rule, name, True))
        self._seen: Dict[Tuple[str, str], Optional[Classification]] = {}

    def classify(self, column: str, table: Optional[str] = None) -> Optional[Classification]:
        """The category of ``column`` of ``table``, or None if its name says no personal data."""
        table_words = frozenset(words((table or "").rpartition(".")[2]))
        key = (column, " ".join(sorted(table_words)))
        if key not in self._seen:
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()  # bounded memory over any number of documents
            self._seen[key] = self._classify(column, table_words)
        return self._seen[key]

    def _classify(self, column: str, table_words: FrozenSet[str]) -> Optional[Classification]:
        name = words(column)
        if not name or name[0] in self.rules.not_personal_prefixes and len(name) > 1:
            return None
        stripped = self._without_ignored(name)
        found = self._match(stripped, table_words)
        if found is not None:
            return found
        for candidate in (name, stripped):  # ssn_last4 before its digit goes; email_sha256 after
            for suffix in self.rules.masked_suffixes:
                if len(candidate) <= len(suffix) or candidate[-len(suffix):] != suffix:
                    continue
                found = self._match(self._without_ignored(candidate[:-len(suffix)]), table_words)
                if found is not None:
                    masked = "_".join(name[len(candidate) - len(suffix):])
                    return attrs.evolve(found, masked=True, evidence=found.evidence + (
                        f"the name says it is stored hashed or masked ({masked!r})",))
        return None

    def _without_ignored(self, name: Words) -> Words:
        while len(name) > 1 and (name[-1].isdigit() or name[-1] in self.rules.ignored_suffixes):
            name = name[:-1]
        return name

    def _match(self, name: Words, table_words: FrozenSet[str]) -> Optional[Classification]:
        if not name:
            return None
        last = name[-1]
        candidates = list(self._by_last_word.get(last, ()))
        for plural in ("s", "es"):
            if last.endswith(plural) and len(last) > len(plural) + 1:
                candidates += self._by_last_word.get(last[: -len(plural)], ())
        best: Optional[Tuple[int, float, Rule, Words]] = None
        for rule, pattern, whole in candidates:
            if whole and len(pattern) != len(name):
                continue
            if len(pattern) > len(name) or name[len(name) - len(pattern):-1] != pattern[:-1]:
                continue
            if rule.tables and not rule.tables & table_words:
                continue
            rank = (len(pattern), rule.confidence)
            if best is None or rank > best[:2]:
                best = (len(pattern), rule.confidence, rule, pattern)
        if best is None:
            return None
        _, confidence, rule, pattern = best
        evidence = f"name {'_'.join(name)!r} matches rule {rule.id!r} ({' '.join(pattern)!r})"
        if rule.tables:
            evidence += " in a table of people"
        return Classification(rule.category, confidence, (evidence,))

    def findings(
        self,
        lineage: StatementLineage,
        flags: Optional[Mapping[str, str]] = None,
    ) -> List[Finding]:
        """The findings of one statement's lineage: personal columns, stars, unread SQL.

        Args:
            lineage: What :func:`inspector.risk.lineage.column_uses` found.
            flags: Column name (any case) -> category, as the server flagged them.
        """
        if lineage.error is not None:
            return [Finding(None, ALL_COLUMNS, UNKNOWN_CATEGORY, "raw", _UNPARSEABLE_CONFIDENCE,
                            [lineage.error, "its columns are not known, so the worst is assumed"],
                            kind="unparseable")]
        flagged = {name.casefold(): category for name, category in (flags or {}).items()}
        found: List[Finding] = []
        for use in lineage.uses:
            if use.column == ALL_COLUMNS:
                found.append(self._star(use.table, use.evidence))
                continue
            classification = self.classify(use.column, use.table)
            category = flagged.get(use.column.casefold())
            if category is not None:
                classification = Classification(
                    category, 0.99, (f"flagged by the server as {category}",))
            if classification is None:
                continue
            exposure = use.exposure
            evidence = list(classification.evidence) + list(use.evidence)
            if classification.masked and exposure == "raw":
                exposure = "transformed"
            if use.table is None:
                evidence.append(
                    "its table is not known without a schema"
                    + (f": one of {', '.join(use.candidates)}" if use.candidates else ""))
            found.append(Finding(use.table, use.column, classification.category, exposure,
                                 classification.confidence, evidence))
        return found

    def _star(self, table: Optional[str], how: Tuple[str, ...]) -> Finding:
        people = bool(frozenset(words((table or "").rpartition(".")[2])) & PEOPLE_TABLE_WORDS)
        evidence = [f"SELECT * shows every column of {table}; which are personal is not known "
                    "without a schema"]
        if people:
            evidence.append(f"the table's name says it holds people: {table}")
        return Finding(table, ALL_COLUMNS, UNKNOWN_CATEGORY, "raw",
                       _STAR_OVER_PEOPLE_CONFIDENCE if people else _STAR_CONFIDENCE,
                       evidence + list(how), kind="all_columns")
