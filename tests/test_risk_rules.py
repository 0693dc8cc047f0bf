"""Rules as data (inspector.risk.rules) and the classifier (inspector.risk.classify)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest

from inspector import InspectorError, InvalidArgument
from inspector.risk import load_rules
from inspector.risk.classify import Classifier
from inspector.risk.rules import default_rules, words


def category(column: str, table: Optional[str] = None) -> Optional[str]:
    """The default rules' category of a column, or None."""
    found = Classifier(default_rules()).classify(column, table)
    return None if found is None else found.category


def test_words_split_identifiers() -> None:
    """snake_case, camelCase, upper case and digits are split into words."""
    assert words("homeEmail_2") == ("home", "email", "2")
    assert words("HTTPServerIP") == ("http", "server", "ip")
    assert words("SSN_LAST4") == ("ssn", "last", "4")


@pytest.mark.parametrize("decoy", ["email_campaign_id", "zip_code_region_count",
                                   "country_code", "promo_code", "postcode_area",
                                   "has_email", "email_verified", "health_score", "last_login",
                                   "token_count", "account_name"])
def test_decoys_are_not_personal(decoy: str) -> None:
    """Names that a substring match would misread hold no personal data."""
    assert category(decoy) is None


@pytest.mark.parametrize(("column", "expected"), [
    ("work_email", "email"), ("EmailAddress", "email"), ("mobile_phone", "phone"),
    ("SSN", "national_id"), ("steuer_id", "national_id"), ("aadhaar_number", "national_id"),
    ("date_of_birth", "date_of_birth"), ("iban", "financial_account"),
    ("base_salary", "compensation"), ("diagnosis_code", "health"),
    ("ethnicity", "special_category"), ("ip_address", "ip_address"),
    ("device_id", "device_id"), ("latitude", "geolocation"), ("gender", "gender"),
    ("api_key", "credential"), ("username", "username"), ("passport_no", "passport"),
    ("billing_address", "postal_address"), ("first_name", "person_name"),
])
def test_categories_by_name(column: str, expected: str) -> None:
    """Each category of the vocabulary is found by a typical name."""
    assert category(column) == expected


def test_a_name_column_is_a_person_only_in_a_table_of_people() -> None:
    """'name' in employees is a person's; in departments it is not."""
    assert category("name", "hr.employees") == "person_name"
    assert category("name", "hr.departments") is None


def test_masked_names_say_so() -> None:
    """email_sha256 and ssn_last4 are still their category, marked masked."""
    classifier = Classifier(default_rules())
    for column in ("email_sha256", "ssn_last4", "password_hash"):
        found = classifier.classify(column)
        assert found is not None and found.masked, column
        assert any("hashed or masked" in e for e in found.evidence)


def test_a_users_file_adds_overrides_and_disables(tmp_path: Path) -> None:
    """Rules with a new id add, the same id replaces, disabled removes; lists replace."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({
        "company_domains": ["acme.test"],
        "rules": [
            {"id": "portuguese_name", "category": "person_name", "confidence": 0.8,
             "names": ["nome"]},
            {"id": "email", "category": "email", "confidence": 0.5, "names": ["correo"]},
            {"id": "gender", "disabled": True},
        ],
    }))
    rules = load_rules(str(path))
    classifier = Classifier(rules)
    assert rules.company_domains == ("acme.test",)
    assert classifier.classify("nome").category == "person_name"  # type: ignore[union-attr]
    assert classifier.classify("correo").confidence == 0.5  # type: ignore[union-attr]
    assert classifier.classify("email") is None
    assert classifier.classify("gender") is None
    assert classifier.classify("ssn").category == "national_id"  # type: ignore[union-attr]


@pytest.mark.parametrize(("content", "phrase"), [
    ("not json", "not JSON"),
    ("[]", "JSON object"),
    ('{"rules": [{"id": "x", "category": "shoe_size", "names": ["shoe"]}]}', "'category'"),
    ('{"rules": [{"id": "x", "category": "email", "confidence": 2, "names": ["e"]}]}',
     "'confidence'"),
    ('{"rules": [{"id": "x", "category": "email", "names": []}]}', "'names'"),
])
def test_bad_rules_files_name_the_problem(tmp_path: Path, content: str, phrase: str) -> None:
    """A bad file raises InvalidArgument naming the file and what is wrong."""
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(InvalidArgument, match=phrase) as caught:
        load_rules(str(path))
    assert isinstance(caught.value, InspectorError)
    assert "rules" in str(caught.value)


def test_missing_rules_file(tmp_path: Path) -> None:
    """A file that cannot be read is InvalidArgument too."""
    with pytest.raises(InvalidArgument, match="cannot read"):
        load_rules(str(tmp_path / "nope.json"))
