"""Which intents an utterance carries: a classifier learned from labeled meeting talk.

Rules grown around a handful of scripts missed most of what new speakers said, so intents are
learned instead: a one-vs-rest linear support vector machine (scikit-learn) over word and
character n-grams of the utterance, trained on the development split of the labeled corpus
(meetbot/language/corpus/). Character n-grams carry it over speech recognition's spellings
("assistants", "take notice"); the words that vary without changing the intent are masked
before anything is learned: participants' names become ``PERSON``, durations ``DURATION``,
due dates ``DUEDATE``, the bot's name ``BOTNAME``. What the bot just did is part of the input
(it asked a question, a request waits for this speaker's answer), so "sure" reads as an
answer only where there is a question. Whether an agenda exists or a note was just written is
left out: in the corpus those contexts come almost only with navigation and corrections, while
in a live meeting they hold nearly all the time, so as tags they made every question after a
note read as a correction and every decision under an agenda item go unheard.

Training takes about a second and happens once per process (:func:`shared_classifier`),
off the event loop when the caller loads it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from meetbot.meeting.dates import find_due
from meetbot.meeting.spoken import find_durations

THRESHOLD = 0.5
"""An intent is reported when its probability reaches this (chosen on the dev split)."""

SCORE_SCALE = 2.0
"""The support vector machine's margins, turned into probability-like scores by a logistic
curve this steep (margin 0 is 0.5): what the thresholds here and in the reader compare to."""


@dataclass(frozen=True)
class Example:
    """One training or test utterance as the classifier sees it."""

    features: str
    intents: tuple[str, ...]


def mask(text: str, *, names: Iterable[str] = (), bot_words: Iterable[str] = (),
         wall_time: float = 0.0) -> str:
    """``text`` with the words that vary without changing the intent replaced by classes."""
    out = text
    due = find_due(out, wall_time)
    while due is not None:
        out = f"{out[: due.start]} DUEDATE {out[due.end:]}"
        due = find_due(out, wall_time)
    for d in reversed(find_durations(out)):
        out = f"{out[: d.start]} DURATION {out[d.end:]}"
    name_set = {n.lower() for n in names if n}
    bot_set = {b.lower() for b in bot_words if b}

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        bare = word.lower()
        if bare.endswith("'s"):
            bare = bare[:-2]
        if bare in bot_set:
            return "BOTNAME"
        if bare in name_set:
            return "PERSON"
        return word

    out = re.sub(r"[A-Za-z][\w']*", repl, out)
    return " ".join(out.split())


def features(masked: str, context_tags: Sequence[str]) -> str:
    """The classifier's input: context tags as tokens, then the masked text."""
    return " ".join([*(f"ctx{t}" for t in context_tags), masked.lower()])


class IntentClassifier:
    """Multi-label intent classifier (see the module docstring)."""

    def __init__(self, examples: Sequence[Example], *, threshold: float = THRESHOLD) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import FeatureUnion, make_pipeline
        from sklearn.preprocessing import MultiLabelBinarizer
        from sklearn.svm import LinearSVC

        self.threshold = threshold
        self._labels = MultiLabelBinarizer()
        y = self._labels.fit_transform([e.intents for e in examples])
        vectorizer = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                      token_pattern=r"[A-Za-z][\w']*|[?]")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                      sublinear_tf=True, min_df=2)),
        ])
        model = make_pipeline(
            vectorizer,
            OneVsRestClassifier(LinearSVC(C=1.0, class_weight="balanced")),
        )
        model.fit([e.features for e in examples], y)
        self._vectorizers = [v for _, v in vectorizer.transformer_list]
        # One matrix product per utterance instead of 32 estimators' input validation
        # (16 ms a read, most of it checks, against well under 1 ms).
        estimators = model[-1].estimators_
        self._weights = np.vstack([est.coef_[0] for est in estimators]).T
        self._bias = np.array([est.intercept_[0] for est in estimators])

    def probabilities(self, feature_text: str) -> dict[str, float]:
        from scipy.sparse import hstack  # type: ignore[import-untyped]

        x = hstack([v.transform([feature_text]) for v in self._vectorizers]).tocsr()
        scores = np.asarray(x @ self._weights).ravel() + self._bias
        probs = 1.0 / (1.0 + np.exp(-SCORE_SCALE * scores))
        return {str(c): float(p) for c, p in zip(self._labels.classes_, probs, strict=True)}

    def predict(self, feature_text: str) -> list[tuple[str, float]]:
        """Intents at or above the threshold, most likely first."""
        probs = self.probabilities(feature_text)
        found = [(c, p) for c, p in probs.items() if p >= self.threshold]
        return sorted(found, key=lambda cp: -cp[1])


# ----------------------------------------------------------------------------- the corpus

CORPUS_PACKAGE = "meetbot.language"
CORPUS_DIR = "corpus"


def corpus_records(pattern: str = "dev-") -> list[dict[str, Any]]:
    """The labeled records shipped with the package (the development split)."""
    records: list[dict[str, Any]] = []
    root = resources.files(CORPUS_PACKAGE).joinpath(CORPUS_DIR)
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(pattern) and entry.name.endswith(".jsonl"):
            for line in entry.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    records.append(json.loads(line))
    return records


_lock = threading.Lock()
_shared: IntentClassifier | None = None


def shared_classifier() -> IntentClassifier:
    """The process's classifier, trained on first use from the packaged development split."""
    global _shared
    with _lock:
        if _shared is None:
            from meetbot.language.reader import example_of

            _shared = IntentClassifier([example_of(r) for r in corpus_records()])
        return _shared
