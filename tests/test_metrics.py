"Fast checks of ecor.metrics outside the notebook (the notebook holds the full hand-made cases)."
import torch
import pytest
from ecor.metrics import (RR, RW, WR, WW, OUTCOMES, gallery_topk, dror_outcomes, dror_metrics, set_outcomes,
                          set_metrics, true_sets_from_membership, per_class_accuracy)

NINF = float('-inf')

def _ranked(C, R, pairs):
    s = torch.zeros(C, R)
    for i, (c, r) in enumerate(pairs): s[c, r] = 100. - i
    return s

def test_dror_branches():
    cases = [([(0, 0), (1, 1), (1, 2), (1, 3), (1, 4)], RR, 0),   # early stop at rank 1
             ([(1, 2), (0, 1), (0, 3), (1, 4), (2, 5)], WW, 1),   # 2-2 tie -> first seen
             ([(1, 1), (1, 2), (2, 3), (0, 0), (1, 0)], WR, 1),   # WR found in the full top 5
             ([(0, 1), (0, 2), (1, 1), (2, 1), (3, 1), (0, 0)], RW, 0)]  # true pair at rank 6
    s = torch.stack([_ranked(4, 6, p) for p, _, _ in cases])
    z = torch.zeros(len(cases), dtype=torch.long)
    out, pred = dror_outcomes(s, z, z)
    assert out.tolist() == [o for _, o, _ in cases]
    assert pred.tolist() == [p for _, _, p in cases]

def test_invariants_random():
    g = torch.Generator().manual_seed(0)
    N, C, R = 400, 7, 11
    s = torch.randint(0, 4, (N, C, R), generator=g).float()
    s[torch.rand(N, C, R, generator=g) < .2] = NINF
    lab, tr = torch.randint(0, C, (N,), generator=g), torch.randint(0, R, (N,), generator=g)
    for k in (1, 5, 200):
        d = dror_metrics(s, lab, tr, k)
        assert abs(sum(d[o] for o in OUTCOMES) - 1) < 1e-9 and abs(d['acc'] - d['RR'] - d['RW']) < 1e-9
        assert torch.equal(dror_outcomes(s, lab, tr, k, chunk=3)[0], dror_outcomes(s, lab, tr, k)[0])
    memb = torch.rand(C, R, generator=g) < .4
    d = set_metrics(s, lab, true_sets_from_membership(memb, lab), k=3)
    acc = (s.logsumexp(2).argmax(1) == lab).double().mean().item()
    assert abs(d['acc'] - acc) < 1e-9 and abs(sum(d[o] for o in OUTCOMES) - 1) < 1e-9

def test_topk_ties_and_mask():
    s = torch.tensor([[1., 3, 3, NINF, 3]])
    idx, valid = gallery_topk(s, 5)
    assert idx.tolist() == [[1, 2, 4, 0, 3]] and valid.tolist() == [[True, True, True, True, False]]

def test_errors_and_per_class():
    s = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match='labels must lie'): dror_metrics(s, torch.tensor([0, 3]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match='true_sets'): set_metrics(s, torch.tensor([0, 1]), torch.zeros(2, 4))
    pca = per_class_accuracy(torch.tensor([0, 1, -1]), torch.tensor([0, 1, 1]), 3)
    assert pca[:2].tolist() == [1., .5] and pca[2].isnan()
