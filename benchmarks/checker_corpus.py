"""Narrative checker quality: catch rate on lies, false rejections on faithful paraphrases and
on legitimate advice, per category, against the digits-only checker as the reference.

Corpora (tests/corpora/, the same data the tests use):
- facts: every scope of the demo organisation (6 services, 3 teams, the tenant) over three
  windows (the last full week, 2026-W04, the month 2026-02), and five reports of a real
  repository (pallets/flask, read by the local-git collector);
- lies: the built-in narrative of each facts document with one false claim added or edited
  (categories: number, number_word, count, share, multiple, direction, verdict, quantifier,
  entity); truths: the same with one true claim in other words;
- advice: harmful recommendations (the ten of issue 21 and paraphrases) and legitimate ones.

The reference column is what the checker caught before claims were read: only its digit,
link, metric and evidence rules (`verify.problems` categories number/link/metric/evidence),
and for advice the verb-and-noun pattern it used then (kept below). Targets: catch 100 %,
false rejections at most 5 %.

    python benchmarks/checker_corpus.py
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpora.advice import HARMFUL, LEGITIMATE
from corpora.facts import all_facts
from corpora.narratives import CATEGORIES, corpus

from insights.narrate import injection, verify

DIGIT_RULES = {"number", "link", "metric", "evidence"}
# The safety-net pattern of narrate v1 (before issue 21), the reference for the advice corpus.
_OLD_VERB = (
    r"(?:delet\w*|remov\w*|disabl\w*|skip\w*|drop\w*|bypass\w*|turn(?:ing)?\s+off|"
    r"comment(?:ing)?\s+out|stop\s+running|get\s+rid\s+of|ignor\w*|mut(?:e|ing)|silenc\w*|"
    r"switch(?:ing)?\s+off|eliminat\w*|rip\w*\s+out)"
)
_OLD_NET = (
    r"(?:tests?|testing|test\s+suites?|unit\s+tests?|checks?|ci\b|pipelines?\s+checks?|"
    r"reviews?|code\s+reviews?|alerts?|alerting|monitoring|linters?|linting)"
)
_OLD_PREP = r"(?:before|after|between|until|for|from|in|on|of|to|with|by|at|and|or)"
OLD_WEAKEN = re.compile(
    rf"\b{_OLD_VERB}\s+(?:(?!{_OLD_PREP}\b)[\w-]+\s+){{0,3}}{_OLD_NET}\b", re.IGNORECASE
)


def pct(part: int, whole: int) -> str:
    return "   n/a" if not whole else f"{part * 100 / whole:5.1f}%"


def main() -> None:
    started = time.perf_counter()
    items = all_facts()
    lies, truths = corpus(items)
    built = time.perf_counter() - started
    print(
        f"corpus: {len(items)} facts documents ({sum(1 for s, _ in items if 'flask' in s)} "
        f"from pallets/flask), {len(lies)} lies, {len(truths)} truths, "
        f"{len(HARMFUL)} harmful and {len(LEGITIMATE)} legitimate recommendations "
        f"(built in {built:.1f} s)\n"
    )

    caught, caught_ref, lie_total = Counter(), Counter(), Counter()
    started = time.perf_counter()
    for case in lies:
        found = verify.problems(case.narrative, case.facts)
        lie_total[case.category] += 1
        caught[case.category] += bool(found)
        caught_ref[case.category] += any(p.category in DIGIT_RULES for p in found)
    rejected, truth_total = Counter(), Counter()
    for case in truths:
        truth_total[case.category] += 1
        rejected[case.category] += bool(verify.problems(case.narrative, case.facts))
    checked = time.perf_counter() - started

    print(
        f"{'category':<12} {'lies':>5} {'caught':>7} {'digits-only':>12} {'truths':>7} "
        f"{'false rej.':>10}"
    )
    for category in CATEGORIES:
        print(
            f"{category:<12} {lie_total[category]:>5} "
            f"{pct(caught[category], lie_total[category]):>7} "
            f"{pct(caught_ref[category], lie_total[category]):>12} "
            f"{truth_total[category]:>7} {pct(rejected[category], truth_total[category]):>10}"
        )
    all_lies, all_truths = sum(lie_total.values()), sum(truth_total.values())
    print(
        f"{'all':<12} {all_lies:>5} {pct(sum(caught.values()), all_lies):>7} "
        f"{pct(sum(caught_ref.values()), all_lies):>12} {all_truths:>7} "
        f"{pct(sum(rejected.values()), all_truths):>10}"
    )

    harmful = sum(injection.weakens_safeguard(t) for t in HARMFUL)
    harmful_ref = sum(bool(OLD_WEAKEN.search(t)) for t in HARMFUL)
    legit = sum(injection.weakens_safeguard(t) for t in LEGITIMATE)
    legit_ref = sum(bool(OLD_WEAKEN.search(t)) for t in LEGITIMATE)
    print(f"\n{'advice':<12} {'n':>5} {'flagged':>8} {'v1 pattern':>11}")
    print(
        f"{'harmful':<12} {len(HARMFUL):>5} {pct(harmful, len(HARMFUL)):>8} "
        f"{pct(harmful_ref, len(HARMFUL)):>11}"
    )
    print(
        f"{'legitimate':<12} {len(LEGITIMATE):>5} {pct(legit, len(LEGITIMATE)):>8} "
        f"{pct(legit_ref, len(LEGITIMATE)):>11}"
    )
    print(
        f"\nchecker time: {checked * 1000 / (all_lies + all_truths):.2f} ms per narrative "
        f"({all_lies + all_truths} narratives in {checked:.1f} s)"
    )
    missed = [c for c in lies if not verify.problems(c.narrative, c.facts)]
    for case in missed[:10]:
        print(f"MISSED [{case.category}] {case.source}: {case.sentence}")
    false = [c for c in truths if verify.problems(c.narrative, c.facts)]
    for case in false[:10]:
        print(f"FALSE REJECTION [{case.category}] {case.source}: {case.sentence}")


if __name__ == "__main__":
    main()
