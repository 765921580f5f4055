"Fast checks of ecor.plots outside the notebook: edge cases (masked galleries, ties, bad input) on the Agg backend."
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from ecor.metrics import OUTCOMES, set_metrics, true_sets_from_membership
from ecor.plots import (OUTCOME_COLORS, wrap_label, plot_outcomes, per_class_table, plot_per_class, plot_joint,
                        plot_rationales, plot_category_given_rationale)

NINF = float('-inf')

def _results(variant='DROR'):
    g = np.random.default_rng(0)
    rows = []
    for s in ('seen', 'cross-dataset', 'unseen'):
        for m in ('zero-shot', 'coop', 'ecor'):
            v = g.dirichlet(np.ones(4))
            rows.append(dict(setting=s, method=m, **{f'{variant} {o}': x for o, x in zip(OUTCOMES, v)}, n_test=50))
    return pd.DataFrame(rows)

def test_outcomes_random_table():
    df = _results('set')
    fig = plot_outcomes(df, 'set', annotate=False)
    assert [a.get_title() for a in fig.axes] == ['seen (50 images)', 'cross-dataset (50 images)', 'unseen (50 images)']
    for ax, (_, d) in zip(fig.axes, df.groupby('setting', sort=False)):
        assert len(ax.texts) == 0
        widths = np.array([[p.get_width() for p in c] for c in ax.containers])   # [4 outcomes, 3 methods]
        np.testing.assert_allclose(widths.sum(0), 1.0, atol=1e-9)
        np.testing.assert_allclose(widths.T, d[[f'set {o}' for o in OUTCOMES]].to_numpy(), atol=1e-12)
        lefts = np.array([[p.get_x() for p in c] for c in ax.containers])
        np.testing.assert_allclose(lefts, np.vstack([np.zeros(3), np.cumsum(widths, 0)[:-1]]), atol=1e-12)
    assert fig not in [plt.figure(n) for n in plt.get_fignums()]   # not left open in pyplot
    plt.close('all')

def test_outcomes_missing_method_and_errors():
    df = _results().iloc[:-1]                                      # 'unseen' lacks 'ecor'
    fig = plot_outcomes(df)
    assert len(fig.axes[2].patches) == 4 * 2 and len(fig.axes[0].patches) == 4 * 3
    with pytest.raises(ValueError, match='empty'): plot_outcomes(df.iloc[:0])
    with pytest.raises(ValueError, match="method 'coop' twice"): plot_outcomes(pd.concat([df, df.iloc[1:2]]))

def test_per_class_table_matches_set_metrics_with_masks():
    g = torch.Generator().manual_seed(1)
    N, C, R = 200, 5, 9
    mem = torch.zeros(C, R, dtype=torch.bool)
    for r in range(R): mem[r % C, r] = True
    lj = torch.randn(N, C, R, generator=g).masked_fill(~mem[None], NINF)   # descriptor-style: own rationales only
    lj = torch.log_softmax(lj.flatten(1), 1).view(N, C, R)
    y = torch.randint(0, C, (N,), generator=g)
    t = per_class_table(lj, y, mem, list('abcde'))
    m = set_metrics(lj, y, true_sets_from_membership(mem, y))
    assert t.n.sum() == N
    assert abs((t.accuracy * t.n).sum() / N - (m['RR'] + m['RW'])) < 1e-9
    assert abs((t.rationale_accuracy * t.n).sum() / N - (m['RR'] + m['WR'])) < 1e-9

def test_per_class_sorted_and_validated():
    pred, y = torch.tensor([0, 1, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 2, 0])
    ax = plot_per_class(pred, y, ['a', 'b', 'c']).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ['b', 'c', 'a']   # 1.0, 1.0 (tie: category order), 0.5
    assert [p.get_width() for p in ax.patches] == [1.0, 1.0, 0.5]
    with pytest.raises(ValueError, match=r'must lie in \[0, 3\)'): plot_per_class(pred, y + 1, ['a', 'b', 'c'])

def test_joint_with_masked_pairs_and_ties():
    C, R = 4, 5
    p = torch.zeros(C, R)
    p[0, 0], p[1, 1], p[1, 2], p[2, 3] = .4, .3, .2, .1    # category 3 and rationale 4 have no mass
    lj = p.log()
    fig = plot_joint(lj, list('ABCD'), list('vwxyz'), top_c=4, top_r=5)
    axes = {a.get_label(): a for a in fig.axes}
    assert [t.get_text() for t in axes['joint'].get_yticklabels()] == ['B', 'A', 'C', 'D']
    assert [t.get_text() for t in axes['joint'].get_xticklabels()] == ['v', 'w', 'x', 'y', 'z']
    np.testing.assert_allclose(np.asarray(axes['joint'].collections[0].get_array()).reshape(C, R),
                               p[[1, 0, 2, 3]].numpy(), atol=1e-7)
    np.testing.assert_allclose([b.get_width() for b in axes['p_c'].patches], [.5, .4, .1, 0], atol=1e-7)
    np.testing.assert_allclose([b.get_height() for b in axes['p_r'].patches], [.4, .3, .2, .1, 0], atol=1e-7)
    # P(c|R,I) of a rationale no category has (column of -inf) is drawn as zeros, not NaN
    d = np.asarray(plot_category_given_rationale(lj, list('ABCD'), list('vwxyz'), top_r=5, top_c=4)
                   .axes[0].collections[0].get_array())
    assert not np.isnan(d).any()
    plt.close('all')

def test_rationales_topk_and_labels():
    lr = torch.log_softmax(torch.tensor([0., 3., 1., 3., 2.]), 0)
    long = 'a long rationale that will not fit on two short lines at all'
    ax = plot_rationales(lr, ['r0', 'r1', 'r2', 'r3', long], k=3, wrap=12).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ['r1', 'r3', wrap_label(long, 12)]   # tie -> lower index
    assert wrap_label(long, 12).endswith('…') and wrap_label(long, 12).count('\n') == 1
    with pytest.raises(ValueError, match='highlight must be a \\[5\\] bool'):
        plot_rationales(lr, list('abcde'), highlight=torch.ones(5))
    with pytest.raises(ValueError, match='k must be >= 1'): plot_rationales(lr, list('abcde'), k=0)

def test_colours_are_fixed():
    assert list(OUTCOME_COLORS) == list(OUTCOMES)
    assert len(set(OUTCOME_COLORS.values())) == 4
