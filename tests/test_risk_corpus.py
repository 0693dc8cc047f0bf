"""The labelled corpus: find_personal_data() against what a careful reviewer says.

Each line of ``tests/risk_corpus/*.jsonl`` is one statement, its dialect and the expected
findings as ``column:category:exposure`` (``*:unknown:raw`` for a star or unreadable SQL). The
labels are a reviewer's, not the code's output: the misses are printed, not hidden.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

from inspector.risk import EXPOSURES, find_personal_data

CORPUS = Path(__file__).parent / "risk_corpus"

Pair = Tuple[str, str]


def load_corpus() -> List[dict]:
    """Every labelled statement of the corpus."""
    entries = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                entries.append(json.loads(line))
    return entries


def expected_pairs(entry: dict) -> Dict[Pair, str]:
    """(column, category) -> exposure, as labelled."""
    pairs = {}
    for label in entry["expect"]:
        column, category, exposure = label.rsplit(":", 2)
        pairs[(column.casefold(), category)] = exposure
    return pairs


def found_pairs(entry: dict) -> Dict[Pair, str]:
    """(column, category) -> the most revealing exposure found."""
    pairs: Dict[Pair, str] = {}
    for finding in find_personal_data(entry["sql"], entry["dialect"]):
        key = (finding.column.casefold(), finding.category)
        if key not in pairs or EXPOSURES.index(finding.exposure) < EXPOSURES.index(pairs[key]):
            pairs[key] = finding.exposure
    return pairs


def test_corpus_is_large_varied_and_well_formed() -> None:
    """At least 150 statements, five dialects, decoys included; every label in the vocabulary."""
    from inspector.risk import CATEGORIES

    entries = load_corpus()
    assert len(entries) >= 150
    assert len({e["id"] for e in entries}) == len(entries)
    assert len({e["dialect"] for e in entries}) >= 5
    text = " ".join(e["sql"] for e in entries)
    for decoy in ("email_campaign_id", "zip_code_region_count", "country_code", "promo_code",
                  "postcode_area"):
        assert decoy in text
    for entry in entries:
        for (_, category), exposure in expected_pairs(entry).items():
            assert category in CATEGORIES + ("unknown",), entry["id"]
            assert exposure in EXPOSURES, entry["id"]


def test_precision_recall_and_exposure_on_the_corpus() -> None:
    """Precision and recall >= 0.9 on (column, category); exposure exact on >= 90% of hits."""
    true_positives = false_positives = false_negatives = exact = 0
    misses = []
    for entry in load_corpus():
        expected, found = expected_pairs(entry), found_pairs(entry)
        for pair, exposure in expected.items():
            if pair not in found:
                false_negatives += 1
                misses.append(f"{entry['id']}: missed {pair} {exposure}")
            else:
                true_positives += 1
                if found[pair] == exposure:
                    exact += 1
                else:
                    misses.append(f"{entry['id']}: {pair} {found[pair]}, expected {exposure}")
        for pair, exposure in found.items():
            if pair not in expected:
                false_positives += 1
                misses.append(f"{entry['id']}: false positive {pair} {exposure}")
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    exposure_exact = exact / true_positives
    print(f"precision {precision:.3f} recall {recall:.3f} exposure exact {exposure_exact:.3f}")
    print("\n".join(misses))
    assert precision >= 0.9, misses
    assert recall >= 0.9, misses
    assert exposure_exact >= 0.9, misses
