"""Exact and near-duplicate samples across splits: planted ones are found at a stated recall, fresh
random data gives (almost) none. Every input is drawn fresh."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from tensorsmith import data
from tensorsmith.data import minhash, shingles, synthetic

NEAR_RECALL = 0.95  # planted near-duplicates (2 words of 20-40 substituted: Jaccard >= 0.65) found
FALSE_RATE = 0.005  # unplanted near-duplicates reported, as a fraction of eval


def _splits(rng, n_train=4000, n_eval=1500, zipf=1.1):
    words = synthetic.vocabulary(20_000, rng)
    train = synthetic.texts(n_train, rng, words, 20, 40, zipf)
    eval_ = synthetic.texts(n_eval, rng, words, 20, 40, zipf)
    return words, train, eval_


def test_clean_text_passes():
    rng = np.random.default_rng()
    _, train, eval_ = _splits(rng, zipf=0)
    report = data.check(train, eval_)
    assert report.passed, str(report)
    assert report.by_check("exact_duplicates")[0].count == 0
    assert report.by_check("near_duplicates")[0].count <= FALSE_RATE * len(eval_)


def test_planted_exact_and_near_duplicates_are_found():
    rng = np.random.default_rng()
    words, train, eval_ = _splits(rng)
    exact, near, _ = synthetic.plant(train, eval_, 60, 200, 2, rng, words)
    report = data.check({"text": train}, {"text": eval_})
    assert not report.passed and report.exit_code == 1
    found_exact = report.by_check("exact_duplicates")[0]
    assert set(exact.tolist()) <= set(found_exact.indices)
    assert found_exact.status == "fail"
    found_near = report.by_check("near_duplicates")[0]
    recall = len(set(near.tolist()) & set(found_near.indices)) / len(near)
    assert recall >= NEAR_RECALL, recall
    unplanted = set(found_near.indices) - set(near.tolist())
    assert len(unplanted) <= FALSE_RATE * len(eval_), unplanted
    assert not set(found_near.indices) & set(exact.tolist())  # exact copies are reported once
    example = found_near.examples[0]
    assert 0.5 <= example["jaccard"] < 1 and example["eval"] in found_near.indices


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, sequences, labels):
        self.sequences, self.labels = sequences, labels

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, i):
        return {"input_ids": torch.tensor(self.sequences[i]), "label": self.labels[i]}


def test_token_sequences_in_a_torch_dataset():
    rng = np.random.default_rng()
    train = [rng.integers(0, 30_000, rng.integers(20, 60)).tolist() for _ in range(2000)]
    eval_ = [rng.integers(0, 30_000, rng.integers(20, 60)).tolist() for _ in range(800)]
    near = rng.choice(len(eval_), 80, replace=False)
    for i, j in zip(near, rng.choice(len(train), 80, replace=False)):
        copy = list(train[j])
        copy[rng.integers(len(copy))] = 30_001  # one token edited
        eval_[i] = copy
    labels = lambda n: rng.integers(0, 2, n).tolist()
    report = data.check(TokenDataset(train, labels(2000)), TokenDataset(eval_, labels(800)))
    assert report.columns == {"input_ids": "tokens", "label": "numeric"}
    found = set(report.by_check("near_duplicates")[0].indices)
    assert len(found & set(near.tolist())) / len(near) >= NEAR_RECALL
    assert len(found - set(near.tolist())) <= FALSE_RATE * len(eval_)


def test_near_duplicate_images_by_perceptual_hash():
    torch.manual_seed(np.random.SeedSequence().entropy % 2**31)
    smooth = lambda n: torch.nn.functional.interpolate(torch.rand(n, 3, 8, 8), size=32, mode="bilinear")
    train, eval_ = smooth(600), smooth(300)
    exact, near = torch.arange(0, 10), torch.arange(10, 40)
    eval_[exact] = train[exact * 3]
    eval_[near] = (train[near * 3] * 0.9 + 0.05 + 0.01 * torch.randn(len(near), 3, 32, 32))
    report = data.check(train, eval_)
    assert report.columns == {"input": "image"}
    assert set(exact.tolist()) == set(report.by_check("exact_duplicates")[0].indices)
    found = report.by_check("image_near_duplicates")[0]
    assert len(set(found.indices) & set(near.tolist())) >= NEAR_RECALL * len(near)
    assert len(set(found.indices) - set(near.tolist())) <= FALSE_RATE * len(eval_)


def test_jaccard_matches_python_sets():
    rng = np.random.default_rng()
    words, a, b = _splits(rng, 50, 50)
    sets = [shingles.shingle_sets(*shingles.word_ids(x), 2) for x in (a, b)]
    e, t = np.arange(50), rng.permutation(50)
    b = [synthetic.edit(a[j], 3, rng, words) for j in t]
    sets[1] = shingles.shingle_sets(*shingles.word_ids(b), 2)
    got = minhash.jaccard(sets[1], sets[0], e, t)

    def bigrams(text):
        w = text.split()
        return {hash(pair) for pair in itertools.pairwise(w)}
    expected = [len(bigrams(b[i]) & bigrams(a[j])) / len(bigrams(b[i]) | bigrams(a[j])) for i, j in zip(e, t)]
    np.testing.assert_allclose(got, expected, atol=0.02)  # 32-bit shingle hashes may collide


def test_lsh_candidate_probability_is_the_s_curve():
    lsh = minhash.LshParams()
    assert lsh.rows == 4
    assert lsh.candidate_probability(0.7) > 0.999 and lsh.candidate_probability(0.2) < 0.06


def test_default_key_is_the_content_not_ids():
    rng = np.random.default_rng()
    _, train, eval_ = _splits(rng, 300, 100, zipf=0)
    eval_[3], eval_[8] = train[10], train[20]
    train_split = {"id": np.arange(300), "text": train, "label": rng.integers(0, 2, 300)}
    eval_split = {"id": np.arange(300, 400), "text": eval_, "label": rng.integers(0, 2, 100)}
    report = data.check(train_split, eval_split)
    assert report.key == ["text"]
    assert report.by_check("exact_duplicates")[0].indices == [3, 8]
