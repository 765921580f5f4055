"""Is the sampled rationale term's gradient unbiased? Its mean over many draws against the exact gradient, on real data.

    python tools/bench_gradients.py              # Caltech-101, 60 draws per estimator (about 10 minutes on one core)
    python tools/bench_gradients.py --configs logq-8,grad-56   # only these estimators
    python tools/bench_gradients.py --start /tmp/bench_sampled/val-caltech101-exact-rationales-0   # at trained prompts

(that folder is what `python tools/bench_sampled.py --validation --threads 1 --seeds 0 --datasets caltech101 --configs
exact-rationales` trains)

One batch of 64 photos from the 1,000 training photos of bench_sampled's validation split (Caltech-101, the embedded default
model, an untrained ECOR or --start's), the gradient of the rationale term -log P(R*|I) with respect to the rationale prompt's context:
exact (every rationale), and sampled by each estimator below with `--draws` independent draws. Printed per estimator:
|mean - exact| / |exact| (bias plus Monte Carlo error), the Monte Carlo standard error of the mean / |exact| (so an
unbiased estimator's first number is about its second or below), and the mean cosine between one step's gradient and
the exact one (how noisy a single step is).
- logq-8: the default, 8 uniformly sampled rationales, log-Q corrected (`ecor.loss.multi_positive_ce`)
- bank-8: the same draws, `LossConfig.bank_softmax` (an exact bank: re-encoded before every draw)
- bank-128: 128 sampled rationales, `bank_softmax`
- cv-32: the default's draws, `bank_softmax` with 32 medoid control variates (`LossConfig.control_medoids`)
- grad-56: about 56 rationales drawn with probability ~ their gradient under the bank (`LossConfig.grad_rationales`)
- grad-40-cv-32, grad-72-cv-32: 40 (72) drawn by their gradient, and 32 medoids
- grad-40-cv-16, grad-48-cv-8: the same, sized to a step of at most 1.3 x CoOp's at 100 categories (tools/bench_scale.py)
- grad-32-cv-16, grad-40-cv-8: the same, about a tenth fewer text tokens a step than those two
- sys-56, sys-40-cv-16: grad-56 and grad-40-cv-16 with the pool drawn by systematic sampling (`LossConfig.systematic`)
- route-8, route-32, grad-40-route: every rationale outside the pool moved with its nearest pool member (`LossConfig.route`),
  over the default's pool, 32 uniform rationales, or about 40 drawn by the gradient
Also printed: the prompts a step encodes, every term of the ECOR loss counted (the pair term's too).
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--draws', type=int, default=60); ap.add_argument('--dataset', default='caltech101')
    ap.add_argument('--cache_dir', default=str(ROOT / '.cache' / 'ecor'))
    ap.add_argument('--configs', default='', help='comma-separated estimators (default: all)')
    ap.add_argument('--start', help='a checkpoint, or a training run\'s folder (its newest checkpoint): measure at those trained prompts, not untrained ones')
    args = ap.parse_args()
    names = [n for n in args.configs.split(',') if n]
    torch.set_num_threads(1)
    from bench_sampled import validation_splits
    from ecor.default import default_towers
    from ecor.model import ECOR
    from ecor.loss import LossConfig, method_loss
    towers = default_towers()
    tr, _ = validation_splits(towers, args.dataset, args.cache_dir)
    torch.manual_seed(0)
    m, rs = (ECOR.from_pretrained(args.start, towers) if args.start else ECOR(towers)), tr.rset
    cats, rats = list(rs.categories), list(rs.unique_rationales)
    idx = torch.randperm(len(tr.labels), generator=torch.Generator().manual_seed(0))[:64]
    feats, labels, ctx = tr.feats[idx], tr.labels[idx], list(m.prompts['r'].ctx)

    def grad(cfg, bank=None, gen=None):
        out = method_loss(m, m.image_embeds(features=feats), labels, cats, rats, rs.membership, cfg, generator=gen, bank=bank)
        return torch.cat([g.flatten() for g in torch.autograd.grad(out['rationale'], ctx)]), out['rationale'].item(), out['prompts'].item()

    exact, loss, _ = grad(LossConfig(neg_rationales=None))
    with torch.no_grad(): bank = m.text_embeds('r', [dict(rationale=r) for r in rats], cache=False)
    print(f'{args.dataset}: {len(rats)} rationales, {"prompts of " + args.start if args.start else "untrained prompts"}, exact loss {loss:.4f}, |exact gradient| {exact.norm():.4f}, {args.draws} draws each')
    for name, cfg in [('logq-8', LossConfig()), ('bank-8', LossConfig(bank_softmax=True)),
                      ('bank-128', LossConfig(bank_softmax=True, neg_rationales=128)),
                      ('cv-32', LossConfig(control_medoids=32)), ('grad-56', LossConfig(grad_rationales=56)),
                      ('grad-40-cv-32', LossConfig(grad_rationales=40, control_medoids=32)),
                      ('grad-72-cv-32', LossConfig(grad_rationales=72, control_medoids=32)),
                      ('grad-40-cv-16', LossConfig(grad_rationales=40, control_medoids=16)),
                      ('grad-48-cv-8', LossConfig(grad_rationales=48, control_medoids=8)),
                      ('grad-32-cv-16', LossConfig(grad_rationales=32, control_medoids=16)),
                      ('grad-40-cv-8', LossConfig(grad_rationales=40, control_medoids=8)),
                      ('sys-56', LossConfig(grad_rationales=56, systematic=True)),
                      ('sys-40-cv-16', LossConfig(grad_rationales=40, control_medoids=16, systematic=True)),
                      ('route-8', LossConfig(route=True)), ('route-32', LossConfig(route=True, neg_rationales=32)),
                      ('grad-40-route', LossConfig(grad_rationales=40, route=True))]:
        if names and name not in names: continue
        gen = torch.Generator().manual_seed(1)
        runs = [grad(cfg, bank.clone() if cfg.reads_bank(len(rats)) else None, gen) for _ in range(args.draws)]
        G, prompts = torch.stack([r[0] for r in runs]), sum(r[2] for r in runs) / len(runs)
        mean, se = G.mean(0), (G.var(0) / len(G)).sum().sqrt()
        cos = torch.nn.functional.cosine_similarity(G, exact[None]).mean()
        print(f'{name:9s} |mean - exact| / |exact| {((mean - exact).norm() / exact.norm()):.3f}   '
              f'standard error / |exact| {(se / exact.norm()):.3f}   mean cos(one step, exact) {cos:.3f}   prompts a step {prompts:.1f}', flush=True)


if __name__ == '__main__':
    main()
