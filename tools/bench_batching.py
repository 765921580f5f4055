"""Length-grouped prompt batches (`towers.length_batches`) against one sorted run of fixed-size batches, 1 thread, default model.

    python tools/bench_batching.py
"""
import time, torch, sys, random, statistics
torch.set_num_threads(1)
from ecor.default import default_towers
from ecor.prompts import PromptLearner
from ecor.rationales import load_dror, dror_file
t = default_towers()
rs = load_dror(dror_file('cifar100'))
allr = sorted({r for c in rs.categories for r in rs.rationales[c]})
random.seed(0)
pairs = [dict(category=c, rationale=r) for c in rs.categories[:10] for r in random.sample(allr, 200)]
random.shuffle(pairs)
pl = PromptLearner(t.text, "This is a photo of a {category} because there is {rationale}")
def old(fillers, batch_size=256):
    lens = [len(b) for b in pl.build(fillers)[0]]
    order = sorted(range(len(fillers)), key=lens.__getitem__)
    out = torch.cat([pl([fillers[j] for j in order[i:i+batch_size]]) for i in range(0, len(order), batch_size)])
    return out[torch.argsort(torch.tensor(order))]
res = {'old': [], 'new': []}
with torch.no_grad():
    a, b = old(pairs), pl.encode(pairs)
    print('max diff', (a-b).abs().max().item())
    for rep in range(4):
        for name, f in (('old', old), ('new', pl.encode)):
            t0 = time.perf_counter(); f(pairs); res[name].append(time.perf_counter() - t0)
print({k: round(statistics.median(v), 3) for k, v in res.items()}, 'ratio new/old', statistics.median(res['new'])/statistics.median(res['old']))
# training-like: 48 prompts, forward + backward
random.seed(1)
small = [dict(category=random.choice(rs.categories), rationale=r) for r in random.sample(allr, 48)]
res = {'old': [], 'new': []}
def oldsmall(f): return pl(f)
for rep in range(15):
    for name, f in (('old', oldsmall), ('new', pl.encode)):
        t0 = time.perf_counter(); f(small).sum().backward(); res[name].append(time.perf_counter() - t0)
print('train-like', {k: round(statistics.median(v), 4) for k, v in res.items()}, 'ratio', statistics.median(res['new'])/statistics.median(res['old']))
