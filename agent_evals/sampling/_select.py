"""Choose the sample: a bounded candidate pool while streaming, then the final selection.

Streaming: a log of a million rows cannot hold its text in memory for TF-IDF,
so the reader keeps a bounded, reproducible candidate pool. Every row gets a
priority, a hash of its content and the seed; the pool keeps the `K` rows with
the smallest priority overall (`K = pool_factor x n`, 20 x n by default, at
most MAX_POOL rows, or 2 x n when that is more) and, when stratifying, the `k`
smallest of each stratum (`k = pool_factor x min_per_stratum`), so a rare
class is never crowded out. Keeping the smallest hashes is a uniform random
sample without replacement that does not depend on the order of the rows or on
the chunk size, and merging two such pools gives the pool of their union.

Selection, on the pool: exact duplicates (same input) collapse to one row;
the sample size is allotted to strata (the minimum first, the rest in
proportion to each stratum's rows in the whole log, never more than a stratum
has); each stratum's rows are taken uniformly (the smallest priorities) or for
diversity; a candidate whose TF-IDF cosine similarity to a row already taken
reaches the threshold is a near-duplicate and is passed over, and a stratum
that runs out gives its share back.

Diversity: the stratum's pool without its near-duplicates (so a request sent a
thousand times is one point), TF-IDF reduced with a truncated SVD (LSA),
MiniBatchKMeans with one cluster per case to take, then the row nearest each
centroid. k-means on every row would spend its clusters on the most common
request; on distinct rows it covers the traffic.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent_evals.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from scipy.sparse import csr_matrix

MAX_POOL = 50_000
"""The most rows the pool keeps overall (unless 2 x n is more): its text is held for TF-IDF."""
_BLOCK = 1024
_TAKEN_SLICE = 8192

Key = tuple[int, int]
"""A pool row's order: (priority, tie-break), both 64-bit hashes."""


def priority(seed: int, digest: bytes) -> int:
    """A row's place in the seeded random order: a 64-bit hash of the seed and its content digest."""
    return int.from_bytes(hashlib.sha256(seed.to_bytes(8, "big", signed=True) + digest).digest()[:8], "big")


@dataclass(slots=True)
class Candidate:
    """A row kept in the pool, with what is needed to write it as a case."""

    key: Key
    id: str
    stratum: str
    balance: str
    position: int
    vars: dict[str, Any]
    expected: Any
    labelled: bool
    cluster: Any
    tags: list[Any]
    output: Any
    feedback: Any
    timestamp: str | None
    tools: list[dict[str, Any]] = field(default_factory=list)
    """Recorded tool calls (`RecordedCall` fields), from the mapped trajectory."""
    tool_notes: list[str] = field(default_factory=list)
    """Why parts of the trajectory could not be recorded, one reason per item."""


class Pool:
    """The bottom-K rows by key overall, plus the bottom-k of each stratum.

    Both are "smallest keys" sets, so a row dropped from a partial pool could
    never be in the pool of the whole log: pruning as we go is exact.
    """

    def __init__(self, global_k: int, stratum_k: int) -> None:
        self.global_k = global_k
        self.stratum_k = stratum_k
        self.rows: list[Candidate] = []
        self._global_max: Key | None = None
        self._stratum_max: dict[str, Key] = {}

    def could_enter(self, prio: int, stratum: str) -> bool:
        """Whether a row of this priority might enter (ties allowed; the full key decides)."""
        if self._global_max is None or prio <= self._global_max[0]:
            return True
        bound = self._stratum_max.get(stratum)
        return self.stratum_k > 0 and (bound is None or prio <= bound[0])

    def add(self, rows: Sequence[Candidate]) -> None:
        """Merge new candidates and prune back to the bounds."""
        if not rows:
            return
        merged = sorted([*self.rows, *rows], key=lambda r: r.key)
        kept: list[Candidate] = []
        per_stratum: dict[str, int] = {}
        for index, row in enumerate(merged):
            seen = per_stratum.get(row.stratum, 0)
            if index < self.global_k or seen < self.stratum_k:
                kept.append(row)
                per_stratum[row.stratum] = seen + 1
                if seen + 1 == self.stratum_k:
                    self._stratum_max[row.stratum] = row.key
        self.rows = kept
        if len(merged) >= self.global_k:
            self._global_max = merged[self.global_k - 1].key


def allocate(
    n: int, population: Mapping[str, int], capacity: Mapping[str, int], minimum: int
) -> dict[str, int]:
    """How many cases each stratum gets.

    Each stratum first gets `minimum` (or all it can give), then the rest of `n`
    goes out in proportion to `population` by largest remainder, never past a
    stratum's `capacity`; ties go to the stratum whose name sorts first.

    Raises:
        ConfigError: `n` cannot hold the minimum of every stratum.
    """
    names = sorted(population)
    base = {s: min(minimum, capacity.get(s, 0)) for s in names}
    needed = sum(base.values())
    if needed > n:
        raise ConfigError(
            f"--n {n} cannot hold --min-per-stratum {minimum} for {len(names)} strata (needs {needed})",
            hint="raise --n, lower --min-per-stratum, or stratify by a column with fewer values",
        )
    alloc = dict(base)
    left = n - needed
    while left > 0:
        open_ = [s for s in names if alloc[s] < capacity.get(s, 0)]
        total = sum(population[s] for s in open_)
        if total <= 0:
            break
        shares = {s: left * population[s] / total for s in open_}
        rest = left
        for s in open_:
            add = min(math.floor(shares[s]), capacity[s] - alloc[s])
            alloc[s] += add
            rest -= add
        for s in sorted(open_, key=lambda s: (-(shares[s] - math.floor(shares[s])), s)):
            if rest > 0 and alloc[s] < capacity[s]:
                alloc[s] += 1
                rest -= 1
        if rest == left:
            break
        left = rest
    return alloc


class NearDuplicates:
    """Greedy near-duplicate filter over TF-IDF vectors (cosine = dot product of L2-normed rows)."""

    def __init__(self, matrix: csr_matrix | None, threshold: float, taken: csr_matrix | None = None) -> None:
        self.matrix = matrix
        self.threshold = threshold
        self.taken = taken
        self.dropped = 0

    def accept(self, candidates: Sequence[int], need: int) -> list[int]:
        """Take up to `need` of `candidates` in order, passing over near-duplicates of anything taken."""
        if need <= 0 or not candidates:
            return []
        if self.matrix is None or self.threshold > 1:
            return list(candidates[:need])
        import numpy as np
        from scipy.sparse import vstack

        out: list[int] = []
        start = 0
        while start < len(candidates) and len(out) < need:
            # Blocks a little larger than what is still needed: near-duplicates are the exception.
            size = min(_BLOCK, max(64, (need - len(out)) * 5 // 4))
            block = list(candidates[start : start + size])
            start += size
            vectors = self.matrix[block]
            best = self._best(vectors)
            within = (vectors @ vectors.T).toarray()
            kept: list[int] = []
            for j in range(len(block)):
                if len(out) + len(kept) >= need:
                    break
                if best[j] >= self.threshold or (kept and within[j, kept].max() >= self.threshold):
                    self.dropped += 1
                    continue
                kept.append(j)
            if kept:
                new = vectors[np.asarray(kept)]
                self.taken = new if self.taken is None else vstack([self.taken, new], format="csr")
                out.extend(block[j] for j in kept)
        return out

    def _best(self, vectors: csr_matrix) -> np.ndarray:
        """Each vector's highest similarity to anything taken, a slice of the taken rows at a time (memory)."""
        import numpy as np

        best = np.zeros(vectors.shape[0])
        if self.taken is None:
            return best
        for start in range(0, self.taken.shape[0], _TAKEN_SLICE):
            part = vectors @ self.taken[start : start + _TAKEN_SLICE].T
            if part.nnz:
                best = np.maximum(best, part.max(axis=1).toarray().ravel())
        return best


@dataclass(frozen=True)
class Selection:
    chosen: dict[str, list[int]]
    """Per stratum, indices into the pool rows, in selection order."""
    near_duplicates: int
    notes: tuple[str, ...]


def vectorize(texts: Sequence[str], extra: Sequence[str]) -> tuple[csr_matrix | None, csr_matrix | None]:
    """TF-IDF (words and word pairs) of the pool's texts and of texts already in the eval set.

    Returns (None, None) when the texts have no words to compare.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return None, None
    import numpy as np

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform([*texts, *extra]).tocsr()
    except ValueError:  # empty vocabulary: nothing but stop words, numbers of one digit, ...
        return None, None
    return matrix[: len(texts)], (matrix[len(texts) :] if extra else None)


def diversity_order(
    matrix: csr_matrix | None, rows: Sequence[int], clusters: int, seed: int, reduced: np.ndarray | None
) -> list[list[int]]:
    """The stratum's rows grouped by k-means cluster, each cluster nearest-to-centroid first.

    Clusters come largest first; with as many rows as clusters, each row is its own.
    """
    if matrix is None or reduced is None or len(rows) <= clusters:
        return [[r] for r in rows]
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    points = reduced[list(rows)]
    model = MiniBatchKMeans(
        n_clusters=clusters, random_state=seed, n_init=1, max_iter=50, batch_size=max(1024, 4 * clusters)
    )
    with warnings.catch_warnings():
        # Fewer distinct rows than clusters is fine: the empty clusters simply give no row.
        warnings.simplefilter("ignore")
        labels = model.fit_predict(points)
    distance = np.linalg.norm(points - model.cluster_centers_[labels], axis=1)
    groups: dict[int, list[tuple[float, int, int]]] = {}
    for position, (label, dist) in enumerate(zip(labels.tolist(), distance.tolist(), strict=True)):
        groups.setdefault(label, []).append((dist, position, rows[position]))
    ordered = [sorted(members) for members in groups.values()]
    ordered.sort(key=lambda members: (-len(members), members[0][1]))
    return [[row for _, _, row in members] for members in ordered]


def reduce(matrix: csr_matrix | None, fit_rows: Sequence[int], seed: int) -> np.ndarray | None:
    """Every row projected to at most 100 dimensions (LSA, fit on `fit_rows`) and L2-normalised, for k-means.

    k-means centroids are dense: in the raw vocabulary (tens of thousands of
    word pairs) a few hundred of them would not fit comfortably in memory.
    """
    if matrix is None or not fit_rows:
        return None
    import numpy as np
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    dims = min(100, matrix.shape[1] - 1, len(fit_rows) - 1)
    if dims < 2:
        return np.asarray(matrix.todense(), dtype=np.float64)
    svd = TruncatedSVD(n_components=dims, random_state=seed).fit(matrix[list(fit_rows)])
    return np.asarray(normalize(svd.transform(matrix)), dtype=np.float64)


def select(
    pool: Sequence[Candidate],
    *,
    n: int,
    population: Mapping[str, int],
    minimum: int,
    method: str,
    threshold: float,
    seed: int,
    texts: Sequence[str],
    taken_texts: Sequence[str] = (),
) -> Selection:
    """Choose up to `n` rows of `pool` (sorted by key, exact duplicates already collapsed).

    Strata are served rarest first, so a near-duplicate across strata is passed
    over in the larger one. A stratum that runs out of distinct rows gives its
    share back to the others.
    """
    matrix, taken = vectorize(texts, taken_texts)
    rows_of: dict[str, list[int]] = {}
    for index, row in enumerate(pool):
        rows_of.setdefault(row.stratum, []).append(index)
    in_pool = 0
    reduced = None
    if method == "diversity":
        # Cluster distinct content: a request sent a thousand times is one point, not a
        # thousand, or k-means would spend its clusters on the most common request.
        # With near-duplicate dropping off, identical texts still count once.
        limit = min(threshold, 1.0 - 1e-6)
        for stratum, rows in rows_of.items():
            distinct = NearDuplicates(matrix, limit, taken)
            rows_of[stratum] = distinct.accept(rows, len(rows))
            in_pool += distinct.dropped
        reduced = reduce(matrix, sorted(i for rows in rows_of.values() for i in rows), seed)
    strata = sorted(population, key=lambda s: (population[s], s))
    capacity = {s: len(rows_of.get(s, [])) for s in strata}
    notes: list[str] = []
    orders: dict[tuple[str, int], list[list[int]]] = {}
    for _ in range(len(strata) + 1):
        alloc = allocate(n, population, capacity, minimum)
        dedup = NearDuplicates(matrix, threshold, taken)
        chosen: dict[str, list[int]] = {}
        for s in strata:
            want = alloc.get(s, 0)
            rows = rows_of.get(s, [])
            if method == "diversity":
                key = (s, want)
                if key not in orders:
                    orders[key] = diversity_order(matrix, rows, max(want, 1), seed, reduced)
                chosen[s] = _take_diverse(orders[key], want, dedup.accept)
            else:
                chosen[s] = dedup.accept(rows, want)
        short = {s: len(chosen[s]) for s in strata if len(chosen[s]) < alloc.get(s, 0)}
        if not short:
            break
        capacity.update(short)
    for s in strata:
        if population[s] < minimum:
            notes.append(
                f"stratum '{s}' has only {population[s]} row(s), fewer than --min-per-stratum {minimum}"
            )
        elif len(chosen[s]) < min(minimum, population[s]):
            notes.append(
                f"stratum '{s}': only {len(chosen[s])} distinct row(s) left after near-duplicates, "
                f"fewer than --min-per-stratum {minimum}"
            )
    return Selection(chosen=chosen, near_duplicates=in_pool + dedup.dropped, notes=tuple(notes))


def _take_diverse(
    clusters: list[list[int]], want: int, accept: Callable[[Sequence[int], int], list[int]]
) -> list[int]:
    """One row per cluster (the nearest its centroid that is not a near-duplicate), then round-robin."""
    out: list[int] = []
    cursor = [0] * len(clusters)
    open_ = list(range(len(clusters)))
    # First pass: every cluster gets its representative, trying the next-nearest on a near-duplicate.
    while open_ and len(out) < want:
        batch = [clusters[c][cursor[c]] for c in open_]
        got = set(accept(batch, want - len(out)))
        out.extend(r for r in batch if r in got)
        still: list[int] = []
        for c, row in zip(open_, batch, strict=True):
            cursor[c] += 1
            if row not in got and cursor[c] < len(clusters[c]) and len(out) < want:
                still.append(c)
        open_ = still
    # Then the rest, round-robin by distance rank, when near-duplicates emptied some clusters.
    if len(out) < want:
        rest: list[int] = []
        depth = max((len(c) for c in clusters), default=0)
        for rank in range(depth):
            rest.extend(
                members[rank] for c, members in enumerate(clusters) if cursor[c] <= rank < len(members)
            )
        out.extend(accept(rest, want - len(out)))
    return out
