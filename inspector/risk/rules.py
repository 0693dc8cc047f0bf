"""The personal-data rules: data, not code.

A rule set is read from JSON: the default one ships with the package (``default_rules.json``,
beside this module); a user's file of the same shape adds rules, or replaces the default rule
with the same ``id`` (``"disabled": true`` removes it), and any list it gives (``company_domains``,
``masked_suffixes``, ...) replaces the default list. The shape::

    {
      "company_domains": ["example.com"],      # a spreadsheet shared beyond these is a finding
      "masked_suffixes": ["hash", "last 4"],   # email_hash: an email, stored hashed
      "ignored_suffixes": ["raw", "primary"],  # phone_primary: a phone
      "not_personal_prefixes": ["is", "has"],  # has_email: a flag, not an email
      "rules": [
        {"id": "email", "category": "email", "confidence": 0.95,
         "names": ["email", "email address"],  # matched against the LAST words of a name
         "tables": ["users"]}                  # optional: only in tables named so
      ]
    }

A name in ``names`` is a few words; a column matches when its own words (split at ``_``,
``-``, spaces, camelCase and digits, lower-cased) end with them, a plural ``s`` allowed on the
last word. A name starting with ``^`` must be the whole column name. So ``email_campaign_id``
(a campaign's id) is not an email while ``work_email`` is, and ``country_code`` never reads as
a card's verification code.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

import attrs

from inspector.exceptions import InvalidArgument
from inspector.risk.findings import CATEGORIES

__all__ = ["Rule", "RuleSet", "default_rules", "load_rules", "rules_from_dict", "rules_key",
           "words"]

Words = Tuple[str, ...]

_LISTS = ("company_domains", "masked_suffixes", "ignored_suffixes", "not_personal_prefixes")
_MAX_RULES_BYTES = 4 * 2**20  # a rules file is a few KiB; refuse to read a huge one whole

# Identifier words: an upper-case run before a capitalised word (HTTPServer -> HTTP, Server),
# a capitalised or lower-case word, an upper-case run, or digits.
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def words(identifier: str) -> Words:
    """Split an identifier into lower-case words: ``homeEmail_2`` -> ``('home', 'email', '2')``."""
    return tuple(word.lower() for word in _WORD.findall(identifier))


@attrs.frozen
class Rule:
    """One rule: column names that say a category.

    Attributes:
        id: The rule's name, unique in a rule set; a user's rule with the same id replaces it.
        category: The personal-data category (see :data:`inspector.risk.findings.CATEGORIES`).
        confidence: How sure a match is, from 0 to 1.
        names: The word sequences a column name must end with.
        whole_names: The word sequences a column name must be exactly (``^name`` in the file).
        tables: When not empty, the rule applies only in tables whose last name part has one
            of these words.
    """

    id: str
    category: str
    confidence: float
    names: Tuple[Words, ...] = ()
    whole_names: Tuple[Words, ...] = ()
    tables: FrozenSet[str] = frozenset()


@attrs.frozen(cache_hash=True)  # hashed on every call that is given it
class RuleSet:
    """Rules and the settings that go with them.

    Attributes:
        rules: The rules, by id order of the files.
        company_domains: Domains a spreadsheet may be shared with without a finding.
        masked_suffixes: Last words saying a column is stored hashed or masked.
        ignored_suffixes: Last words that say nothing of the category (``primary``, ``raw``).
        not_personal_prefixes: First words that make a column a flag or a count
            (``is_``, ``has_``, ``num_``).
    """

    rules: Tuple[Rule, ...] = ()
    company_domains: Tuple[str, ...] = ()
    masked_suffixes: Tuple[Words, ...] = ()
    ignored_suffixes: FrozenSet[str] = frozenset()
    not_personal_prefixes: FrozenSet[str] = frozenset()

    def __repr__(self) -> str:
        return f"RuleSet(rules={len(self.rules)}, company_domains={list(self.company_domains)})"


def default_rules() -> RuleSet:
    """The rule set that ships with the package."""
    return rules_from_dict(_default_document())


def load_rules(path: str, base: Optional[RuleSet] = None) -> RuleSet:
    """Read a user's rules file over the defaults.

    Args:
        path: A JSON file of the shape in the module docstring.
        base: The rules it adds to or overrides; default :func:`default_rules`.

    Raises:
        InvalidArgument: The file cannot be read, is not JSON, or a rule is not valid (the
            message names the file and the rule).
    """
    try:
        with open(path, "rb") as file:
            raw = file.read(_MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise InvalidArgument(f"rules: cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_RULES_BYTES:
        raise InvalidArgument(f"rules: {path} is larger than {_MAX_RULES_BYTES} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgument(f"rules: {path} is not JSON: {exc}") from None
    if base is not None:
        return _merged(base, document, path)
    return rules_from_dict(_merge_documents(_default_document(), document, path), path)


def rules_from_dict(document: Mapping[str, Any], source: str = "rules") -> RuleSet:
    """Build a rule set from a parsed rules document (the whole set, no defaults added).

    Raises:
        InvalidArgument: The document or one of its rules is not valid.
    """
    if not isinstance(document, Mapping):
        raise InvalidArgument(f"{source}: must be a JSON object")
    rules = tuple(
        _rule(entry, f"{source}: rule {number}")
        for number, entry in enumerate(_list(document, "rules", source), 1)
        if not (isinstance(entry, Mapping) and entry.get("disabled"))
    )
    ids = [rule.id for rule in rules]
    if len(ids) != len(set(ids)):
        raise InvalidArgument(f"{source}: rule ids must be unique")
    return RuleSet(
        rules=rules,
        company_domains=tuple(d.lower().lstrip("@.") for d in
                              _strings(document, "company_domains", source)),
        masked_suffixes=tuple(words(s) for s in _strings(document, "masked_suffixes", source)),
        ignored_suffixes=frozenset(s.lower() for s in
                                   _strings(document, "ignored_suffixes", source)),
        not_personal_prefixes=frozenset(s.lower() for s in
                                        _strings(document, "not_personal_prefixes", source)),
    )


def _merged(base: RuleSet, document: Any, source: str) -> RuleSet:
    overlay = rules_from_dict(_merge_documents({"rules": []}, document, source), source)
    replaced = {rule.id for rule in overlay.rules}
    disabled = {str(r.get("id")) for r in document.get("rules", [])
                if isinstance(r, Mapping) and r.get("disabled")}
    rules = tuple(r for r in base.rules if r.id not in replaced | disabled) + overlay.rules
    return attrs.evolve(
        base,
        rules=rules,
        **{name: getattr(overlay, name) for name in _LISTS if name in document},
    )


def _merge_documents(base: Dict[str, Any], overlay: Any, source: str) -> Dict[str, Any]:
    if not isinstance(overlay, Mapping):
        raise InvalidArgument(f"{source}: must be a JSON object")
    merged = dict(base)
    for name in _LISTS:
        if name in overlay:
            merged[name] = overlay[name]
    rules: Dict[str, Any] = {}
    for entry in list(base.get("rules", [])) + _list(overlay, "rules", source):
        key = str(entry.get("id")) if isinstance(entry, Mapping) else str(len(rules))
        rules.pop(key, None)  # an override goes last, in the user's order
        rules[key] = entry
    merged["rules"] = list(rules.values())
    return merged


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise InvalidArgument(f"{where}: must be a JSON object")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise InvalidArgument(f"{where}: 'id' must be a non-empty string")
    where = f"{where} ({rule_id!r})"
    category = entry.get("category")
    if category not in CATEGORIES:
        raise InvalidArgument(f"{where}: 'category' must be one of {', '.join(CATEGORIES)}")
    confidence = entry.get("confidence", 0.8)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (
            0 <= confidence <= 1):
        raise InvalidArgument(f"{where}: 'confidence' must be a number from 0 to 1")
    names = _strings(entry, "names", where)
    if not names:
        raise InvalidArgument(f"{where}: 'names' must list at least one name")
    parsed = [(name.startswith("^"), words(name.lstrip("^"))) for name in names]
    if any(not name_words for _, name_words in parsed):
        raise InvalidArgument(f"{where}: every name must have a letter or a digit")
    return Rule(
        id=rule_id,
        category=str(category),
        confidence=float(confidence),
        names=tuple(w for whole, w in parsed if not whole),
        whole_names=tuple(w for whole, w in parsed if whole),
        tables=frozenset(t.lower() for t in _strings(entry, "tables", where)),
    )


def _list(document: Mapping[str, Any], key: str, where: str) -> List[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}: {key!r} must be a list")
    return value


def _strings(document: Mapping[str, Any], key: str, where: str) -> List[str]:
    value = _list(document, key, where)
    if not all(isinstance(item, str) for item in value):
        raise InvalidArgument(f"{where}: {key!r} must be a list of strings")
    return value


def _default_document() -> Dict[str, Any]:
    text = resources.files("inspector.risk").joinpath("default_rules.json").read_text("utf-8")
    document: Dict[str, Any] = json.loads(text)
    return document


def rules_key(rules: RuleSet) -> str:
    """A short hash that is equal for equal rule sets: which rules a stored review used."""
    import hashlib

    def plain(value: Any) -> Any:
        if isinstance(value, (frozenset, set)):
            return sorted(plain(v) for v in value)
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Rule):
            return plain(attrs.astuple(value, recurse=False))
        return value

    text = json.dumps(plain(attrs.astuple(rules, recurse=False)), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
