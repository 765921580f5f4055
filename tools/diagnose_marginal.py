"""Why is ECOR's seen-class accuracy below CoOp's? Category decisions from the parts of ECOR's factorisation.

    python tools/diagnose_marginal.py [--checkpoint runs/results-checkpoints/seen-ecor-seed0/checkpoint-epoch3]

Loads prompts trained by `make results` (seen setting: CIFAR-10), scores the same 1,000 test photos and prints the
accuracy of several ways of reading a category off P(R|I) and P(c|R,I):
- marginal: argmax_c sum_R P(R|I) P(c|R,I)   (ECOR's prediction, the table's `accuracy`)
- own-rationale marginal: argmax_c sum_{R in set(c)} P(R|I) P(c|R,I)   (each category only through its own rationales)
- rationale vote: argmax_c sum_{R in set(c)} P(R|I)   (P(R|I) alone)
- at the top rationale: argmax_c P(c|R_top,I), R_top = argmax_R P(R|I)
- uniform P(R): argmax_c mean_R P(c|R,I)   (the second factor alone)
- in-set share: the mean over photos of sum_R P(R|I) [R in set(true c)] (how much P(R|I) lies on the true category's rationales)
"""
from __future__ import annotations
import argparse
import torch
from ecor.default import default_towers
from ecor.evaluate import load_split
from ecor.model import ECOR

ap = argparse.ArgumentParser()
ap.add_argument('--checkpoint', default='runs/results-checkpoints/seen-ecor-seed0/checkpoint-epoch3')
ap.add_argument('--cache_dir', default='.cache/ecor')
args = ap.parse_args()
towers = default_towers()
te = load_split(towers, 'cifar10', 'test', 1000, cache_dir=args.cache_dir, progress=False)
m = ECOR.from_pretrained(args.checkpoint, towers).eval()
cats, rats, member = te.rset.categories, te.rset.unique_rationales, te.rset.membership.float()   # [C, R]
with torch.no_grad(): out = m(cats, rats, features=te.feats, factorisation='ecor')
p_r = out.log_p_r.exp()                                   # [N, R]
p_c_r = (out.log_joint - out.log_p_r[:, None, :]).exp()   # [N, C, R] P(c|R,I)
y = te.labels
acc = lambda pred: (pred == y).float().mean().item()
rows = {'marginal (the table)': acc(out.log_p_c.argmax(1)),
        'own-rationale marginal': acc((p_r[:, None, :] * p_c_r * member).sum(2).argmax(1)),
        'rationale vote, P(R|I) alone': acc((p_r @ member.T).argmax(1)),
        'P(c|R_top, I) at the top rationale': acc(p_c_r[torch.arange(len(y)), :, p_r.argmax(1)].argmax(1)),
        'uniform P(R): argmax_c mean_R P(c|R,I)': acc(p_c_r.mean(2).argmax(1))}
for k, v in rows.items(): print(f'{k:40s} {v:.3f}')
print(f"{'P(R|I) mass on the true category set':40s} {(p_r * member[y]).sum(1).mean().item():.3f}")
print(f"{'P(c*|R,I) on own rationales / others':40s} "
      f"{(p_c_r[torch.arange(len(y)), y] * member[y]).sum(1).div(member[y].sum(1)).mean().item():.3f} / "
      f"{(p_c_r[torch.arange(len(y)), y] * (1 - member[y])).sum(1).div((1 - member[y]).sum(1)).mean().item():.3f}")
