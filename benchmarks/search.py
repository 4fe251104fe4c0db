"""Transcript search at scale: 10,000 succeeded episodes of generated transcripts.

A throwaway PostgreSQL database, migrated as in production, gets ``--episodes`` succeeded
jobs of ``--segments`` segments each (about 15 words a segment, drawn from a vocabulary of
``--vocabulary`` made-up words with a Zipf distribution, as word frequencies in speech are),
shared out among ``--keys`` API keys. Rows go in with ``COPY`` (the tsvector is PostgreSQL's
own generated column); the GIN index is built once after the load, as a restore would.

Then ``--queries`` searches of each kind run through :func:`podscribe.jobs.search.search`
(the statement the API runs: the key's succeeded jobs, ranked, a page of 20 with snippets),
each for a random key:

* ``top-10 word``: one of the 10 most frequent words (each in 15-90 % of segments: the worst
  case; in real speech the most frequent words are English stop words, which the index
  leaves out);
* ``common word``: ranks 10-30 (each in 5-15 % of segments, as "know" or "people" are in
  speech);
* ``word``: a word of middling frequency (ranks 100-1,000);
* ``rare word``: a word of rank 10,000 or more;
* ``phrase``: two adjacent words taken from a generated segment;
* ``prefix``: the first four letters of a middling word, with ``*``.

Printed: the load's figures, the index and table sizes, and p50/p99 per kind.

    python -m benchmarks search [-- --episodes 10000 --segments 200 --keys 20 --queries 200]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
_WORDS_PER_SEGMENT = (8, 22)
_SECONDS_PER_SEGMENT = 6.0


@dataclass(frozen=True)
class Corpus:
    """What was generated: the vocabulary by frequency rank, and a few real segments."""

    vocabulary: list[str]
    samples: list[str]


def _vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        count = int(rng.integers(2, 5))
        words.add("".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), count)))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


def _segment_texts(
    count: int, vocabulary: list[str], rng: np.random.Generator, exponent: float
) -> list[str]:
    ranks = np.arange(1, len(vocabulary) + 1, dtype=np.float64)
    weights = ranks**-exponent
    lengths = rng.integers(_WORDS_PER_SEGMENT[0], _WORDS_PER_SEGMENT[1], count)
    drawn = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights / weights.sum())
    words = np.array(vocabulary, dtype=object)[drawn]
    texts: list[str] = []
    position = 0
    for length in lengths:
        texts.append(" ".join(words[position : position + length]))
        position += int(length)
    return texts


def _load(engine: Engine, args: argparse.Namespace, rng: np.random.Generator) -> Corpus:
    """Jobs, access rows and segments, by COPY; the GIN index rebuilt after."""
    vocabulary = _vocabulary(args.vocabulary, rng)
    keys = [f"bench-key-{number:02d}" for number in range(args.keys)]
    job_ids = [uuid.UUID(int=int(rng.integers(1, 2**62)) << 64 | n) for n in range(args.episodes)]
    jobs_copy, access_copy = io.StringIO(), io.StringIO()
    for number, job_id in enumerate(job_ids):
        jobs_copy.write(
            f"{job_id}\t1000\t{number}\thttps://podcasts.apple.com/x?i={number}\tsucceeded\t1\t1\t"
            '{"json": "x"}\t'
            f'{{"title": "Episode {number}", "show": "Show {number % 97}"}}\ttiny.en\ten\n'
        )
        access_copy.write(
            f"{job_id}\t{keys[number % len(keys)]}\thttps://podcasts.apple.com/x?i={number}\n"
        )
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()  # pg8000's: COPY takes a stream
        cursor.execute("DROP INDEX transcript_segments_search_idx")
        cursor.execute(
            "COPY jobs (id, collection_id, episode_id, source_url, status, attempts, progress,"
            " transcript_objects, episode, transcript_model, transcript_language) FROM STDIN",
            stream=io.BytesIO(jobs_copy.getvalue().encode()),
        )
        cursor.execute(
            "COPY job_access (job_id, key_fingerprint, source_url) FROM STDIN",
            stream=io.BytesIO(access_copy.getvalue().encode()),
        )
        raw.commit()
        samples: list[str] = []
        started = time.perf_counter()
        batch = max(1, 200_000 // args.segments)  # jobs per COPY: about 200k segments
        for first in range(0, len(job_ids), batch):
            chunk = job_ids[first : first + batch]
            texts = _segment_texts(len(chunk) * args.segments, vocabulary, rng, args.zipf)
            samples += texts[:5]
            rows = io.StringIO()
            for index, text in enumerate(texts):
                job_id, seq = chunk[index // args.segments], index % args.segments
                start = seq * _SECONDS_PER_SEGMENT
                rows.write(f"{job_id}\t{seq}\t{start}\t{start + _SECONDS_PER_SEGMENT}\t{text}\n")
            cursor.execute(
                "COPY transcript_segments (job_id, seq, start_seconds, end_seconds, text)"
                " FROM STDIN",
                stream=io.BytesIO(rows.getvalue().encode()),
            )
            raw.commit()
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            "CREATE INDEX transcript_segments_search_idx"
            " ON transcript_segments USING GIN (search_vector)"
        )
        cursor.execute("ANALYZE")
        raw.commit()
        indexed = time.perf_counter() - started
        print(
            f"loaded {args.episodes:,} episodes x {args.segments} segments in {loaded:.1f} s"
            f" (COPY with the generated tsvector); GIN index built in {indexed:.1f} s",
            flush=True,
        )
    finally:
        raw.close()
    return Corpus(vocabulary, samples)


def _queries(kind: str, corpus: Corpus, rng: np.random.Generator, count: int) -> list[str]:
    vocabulary = corpus.vocabulary

    def pick(low: int, high: int) -> str:
        return vocabulary[int(rng.integers(low, min(high, len(vocabulary))))]

    if kind == "top-10 word":
        return [pick(0, 10) for _ in range(count)]
    if kind == "common word":
        return [pick(10, 30) for _ in range(count)]
    if kind == "word":
        return [pick(100, 1000) for _ in range(count)]
    if kind == "rare word":
        return [pick(10_000, len(vocabulary)) for _ in range(count)]
    if kind == "prefix":
        return [pick(100, 1000)[:4] + "*" for _ in range(count)]
    phrases: list[str] = []
    for _ in range(count):
        words = corpus.samples[int(rng.integers(0, len(corpus.samples)))].split()
        at = int(rng.integers(0, len(words) - 1))
        phrases.append(f'"{words[at]} {words[at + 1]}"')
    return phrases


KINDS = ("top-10 word", "common word", "word", "rare word", "phrase", "prefix")


def _measure(
    engine: Engine, args: argparse.Namespace, corpus: Corpus, rng: np.random.Generator
) -> None:
    from podscribe.api.search import parse_search_text
    from podscribe.jobs.search import search

    print(f"{'query':<12} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'hits/page':>9}")
    for kind in KINDS:
        timings: list[float] = []
        found = 0
        for text in _queries(kind, corpus, rng, args.queries):
            key = f"bench-key-{int(rng.integers(0, args.keys)):02d}"
            terms = parse_search_text(text)
            with engine.connect() as conn:
                started = time.perf_counter()
                page = search(conn, key_fingerprint=key, query=terms, limit=20)
                timings.append((time.perf_counter() - started) * 1000)
            found += len(page.hits)
        timings.sort()
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        print(
            f"{kind:<12} {len(timings):>5} {statistics.median(timings):>8.1f} {p99:>8.1f}"
            f" {timings[-1]:>8.1f} {found / len(timings):>9.1f}",
            flush=True,
        )


def _sizes(engine: Engine) -> None:
    with engine.connect() as conn:
        index, table, rows = conn.execute(
            sa.text(
                "SELECT pg_size_pretty(pg_relation_size('transcript_segments_search_idx')),"
                " pg_size_pretty(pg_table_size('transcript_segments')),"
                " (SELECT count(*) FROM transcript_segments)"
            )
        ).one()
    print(f"{rows:,} segments: table {table}, GIN index {index}")


def main(argv: list[str]) -> int:
    """Generate the corpus, time the searches, print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks search")
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--vocabulary", type=int, default=20_000)
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of word ranks")
    parser.add_argument("--queries", type=int, default=200, help="per kind")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)

    from podscribe.db import create_db_engine, migrate
    from podscribe.settings import load_settings
    from tests.services import throwaway_database

    print(
        f"{args.episodes:,} episodes x {args.segments} segments, {args.keys} keys,"
        f" {args.vocabulary:,} words (Zipf {args.zipf:g}), {args.queries} queries per kind",
        flush=True,
    )
    rng = np.random.default_rng(args.seed)
    with throwaway_database() as database_url:
        engine = create_db_engine(load_settings(database_url=database_url, env="test"))
        try:
            migrate(engine)
            corpus = _load(engine, args, rng)
            _sizes(engine)
            _measure(engine, args, corpus, rng)
        finally:
            engine.dispose()
    return 0
