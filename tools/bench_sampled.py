"""Does training with sampled softmaxes reach the accuracy of the exact softmax? ECOR on CIFAR-10 and Caltech-101, 3 seeds.

    python tools/bench_sampled.py                 # sampled, exact-anchored, exact on CIFAR-10 and Caltech-101 (about 40 minutes on 2 cores)
    python tools/bench_sampled.py --datasets cifar10 --configs all-anchors,exact-rationales,exact-categories,rationales-32 --out x.csv

    python tools/bench_sampled.py --datasets caltech101 --configs rationales-32 --out y.csv

nbs/results/sampled_vs_exact.csv holds the three runs (09_train reads it).

Configurations (all ECOR, the embedded default model, 4 epochs, batch 64, lr 2e-3, the same photos for every seed):
- sampled: the defaults of `ecor.loss.LossConfig` (4 anchors, 4 sampled categories, 8 sampled rationales, log-Q corrected)
- exact-anchored: the same 4 anchors, exact softmaxes over all categories and all rationales
- exact: every category of the batch an anchor, exact softmaxes (CIFAR-10 only: on Caltech-101 a step would encode
  ~5,000 pair prompts)
- one budget at a time: all-anchors, exact-rationales, exact-categories, rationales-32 (32 sampled rationales, not 8)
Test metrics come from `ecor.evaluate.method_search` (equal to the full joint's).
"""
from __future__ import annotations
import argparse, time
from pathlib import Path
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {'sampled': {}, 'exact-anchored': dict(neg_categories=None, neg_rationales=None),
           'exact': dict(anchors=None, neg_categories=None, neg_rationales=None),
           # one budget at a time set to exact, the others sampled (to see which one matters)
           'exact-rationales': dict(neg_rationales=None), 'exact-categories': dict(neg_categories=None), 'all-anchors': dict(anchors=None),
           'rationales-32': dict(neg_rationales=32)}   # 32 sampled rationales instead of 8
DATA = {'cifar10': (('cifar10', 'train'), ('cifar10', 'test')), 'caltech101': (('caltech101', 'train'), ('caltech101', 'heldout'))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', default='0,1,2'); ap.add_argument('--n_train', type=int, default=1000)
    ap.add_argument('--n_test', type=int, default=1000); ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--datasets', default='cifar10,caltech101')
    ap.add_argument('--configs', default='sampled,exact-anchored,exact')
    ap.add_argument('--out', default=str(ROOT/'nbs'/'results'/'sampled_vs_exact.csv'))
    ap.add_argument('--cache_dir', default=str(ROOT/'.cache'/'ecor'))
    args = ap.parse_args()
    from ecor.default import default_towers
    from ecor.evaluate import load_split, method_search, search_outcomes, summarise
    from ecor.model import ECOR
    from ecor.loss import LossConfig
    from ecor.train import TrainConfig, train
    towers = default_towers()
    rows = []
    for ds in args.datasets.split(','):
        (dtr, str_), (dte, ste) = DATA[ds]
        tr = load_split(towers, dtr, str_, args.n_train, cache_dir=args.cache_dir, progress=False)
        te = load_split(towers, dte, ste, args.n_test, cache_dir=args.cache_dir, progress=False)
        for name in args.configs.split(','):
            over = CONFIGS[name]
            if name == 'exact' and ds != 'cifar10': continue
            for seed in map(int, args.seeds.split(',')):
                torch.manual_seed(seed)
                m = ECOR(towers)
                cfg = TrainConfig(LossConfig(**over), epochs=args.epochs, seed=seed, progress=False, sample_from=1,  # the budgets
                                  output_dir=f'/tmp/bench_sampled/{ds}-{name}-{seed}')                 # as given, any gallery size
                t0 = time.time()
                hist = train(m, tr.feats, tr.labels, tr.rset, cfg)
                secs = time.time() - t0
                met = summarise(search_outcomes(method_search('ecor', m, te.feats, te.rset), te.labels, te.rset))
                rows.append(dict(dataset=ds, config=name, seed=seed, train_seconds=round(secs, 1),
                                 prompts_per_step=round(sum(h['prompts'] for h in hist) / len(hist), 1), **met))
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    summary = df.groupby(['dataset', 'config'])[['accuracy', 'DROR RR', 'set RR', 'train_seconds', 'prompts_per_step']].agg(['mean', 'std'])
    print(summary.round(3).to_string())


if __name__ == '__main__':
    main()
