"""ECOR at scale: training-step cost against CoOp, and explanation cost against the image tower, measured side by side.

    python tools/bench_scale.py                      # everything (about an hour on 2 CPU cores)
    python tools/bench_scale.py --parts train        # training steps only
    python tools/bench_scale.py --models default     # the embedded default model only
    python tools/bench_scale.py --parts train --models default --Cs 100,997 --loss '{"grad_rationales": 72, "control_medoids": 32}'
                                                     # ECOR's steps with other LossConfig fields (a bank, when they read one)
    python tools/bench_scale.py --parts train --models default --Cs 100,997 --loss '{"snapshot_every": 8}'
                                                     # with snapshots (over the batch's photos): means over whole cycles of 8 steps
    python tools/bench_scale.py --parts train --models default --Cs 100,997 --loss '{"grad_rationales": 40, "rolling": true, "bank_refresh": 32}'
                                                     # one snapshot, renewed by each step's pool (its R prompts in the warm-up step),
                                                     # over `snapshot_photos` (1,024) photos that the batches take turns in: medians
    python tools/bench_scale.py --parts explain --models clip --galleries imagenet --prompts trained --synthetic_pairs 0.3
                                                     # warm cost of a full-size CLIP on ImageNet, stand-in pair embeddings
    python tools/bench_scale.py --parts explain --models default --galleries imagenet --prompts trained --certify
                                                     # as `explain` does: on until each photo's predicted category is certified

Every configuration runs in a fresh subprocess, so its peak RSS is its own and a "second process" really is one.
Times are medians of repeated runs in the same process (3 image-tower passes, 2 more between the warm explains; 3 warm
explains, each reading the cache from disk again; a cold explain runs once); only ratios measured in one process are
compared.
Results are printed as markdown and written to --out (JSON).

Training columns: *_prompts and *_tokens = prompts a step encodes with gradient and their text tokens (each prompt's own,
start and end included, padding not counted): a step's time follows its tokens more closely than its prompts.

Explanation columns: ratio_to_tower = explain (image tower + search) / image tower alone; search_over_tower = the
search part of those same explains / image tower alone (medians), so ratio_to_tower is about 1 + search_over_tower: the
search's own cost, without the spread between two passes of the tower (a few percent on a loaded machine);
cold_over_encode = a cold explain / encoding the R rationale prompts and the visited pair columns alone; cold_text_over_encode = the same without
the image tower's pass in the numerator (on small galleries the tower, not the text, dominates a cold explain).
visited_* and columns count the pairs scored from float32 blocks; sketched_* and sketched_columns those that the 8-bit
sketch of their column kept out of a photo's top 5 (`ECOR.search`, blocks of 1 MiB or more): a warm run reads only the
sketch of such a column, a cold run encodes it all the same.
"""
from __future__ import annotations
import argparse, json, os, random, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GALLERIES = {10: 'cifar10', 100: 'cifar100', 997: 'imagenet'}
THREADS = 1


def rss_mb() -> float:
    "Peak resident set size of this process so far, MiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_clip_b32(path: Path) -> Path:
    "A random CLIP with ViT-B/32's configuration (so its FLOPs are the real checkpoint's) and its logit scale 100."
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel
    from ecor.towers import _image_processor_class
    from ecor.default import minilm_path
    if (path/'config.json').exists(): return path
    # no CLIP vocabulary is reachable offline: BERT's WordPiece (MiniLM's, 30,522 entries) gives prompts of about the
    # same token length as CLIP's BPE, with [CLS]/[SEP] as start/end of text
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    tok.bos_token, tok.eos_token = '[CLS]', '[SEP]'
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok), bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                      pad_token_id=tok.pad_token_id),
                     vision_config=dict(), projection_dim=512, logit_scale_init_value=4.6052)
    import torch
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    _image_processor_class()(size={'shortest_edge': 224}, crop_size={'height': 224, 'width': 224}).save_pretrained(path)
    return path


def towers_for(model: str, work: Path):
    from ecor.towers import clip_towers
    from ecor.default import default_towers
    if model == 'default': return default_towers()
    return clip_towers(make_clip_b32(work/'clip-b32'), name='random-clip-vit-b-32')


def photos(n: int, dataset: str = 'caltech101'):
    from ecor.data import load_image_dataset, subsample
    ds = load_image_dataset(dataset, 'train' if dataset == 'caltech101' else 'test')
    return subsample(ds, n, seed=3)['image']


# --------------------------------------------------------------------------------------------------------------------
def step_setup(m, method: str, loss: str, rset, sample_from: int = 11):
    "The loss configuration `ecor.train.train` runs for `method` (`loss`: other LossConfig fields for ECOR, as JSON), and the bank it reads, if any."
    import torch
    from ecor.loss import LossConfig
    from ecor.train import TrainConfig
    cfg = TrainConfig(LossConfig(method, **(json.loads(loss) if loss and method == 'ecor' else {})), sample_from=sample_from).loss_config(len(rset.categories))
    if not cfg.reads_bank(len(rset.unique_rationales)): return cfg, None
    with torch.no_grad():  # every rationale encoded once, before the steps (as LossModule does)
        return cfg, m.text_embeds('r', [dict(rationale=r) for r in rset.unique_rationales], cache=False)


def snapshot_for(m, cfg, img, labels, mem, rats):
    "The snapshot `LossModule` would take: over the batch's photos; for `rolling`, over `snapshot_photos` of them (the batch's, repeated), in turns."
    import torch
    from ecor.loss import take_snapshot, right_rationales
    if not cfg.rolling: return take_snapshot(m, img.detach(), right_rationales(labels, mem), rats)
    k = -(-cfg.snapshot_photos // len(labels))   # a step's [M, R] product is part of its cost: M as in training on a large set
    snap = take_snapshot(m, img.detach().repeat(k, 1)[:cfg.snapshot_photos], right_rationales(labels.repeat(k)[:cfg.snapshot_photos], mem), rats, shares=True)
    snap.turn = 0
    return snap


def count_tokens(m, tokens: list) -> None:
    "Count the text tokens of every prompt `m` encodes with gradient into tokens[0] (each prompt's own, start and end included)."
    import torch
    for pl in m.prompts.values():
        def forward(fillers, f=pl.forward, pl=pl, **kw):
            if torch.is_grad_enabled(): tokens[0] += sum(len(b) + 2 for b in pl.build(fillers)[0])
            return f(fillers, **kw)
        pl.forward = forward


def train_step(model_name: str, C: int, work: Path, steps: int, sample_from: int = 11, loss: str = '') -> dict:
    """ECOR (the training defaults: exact below 11 categories, sampled above) and CoOp (full softmax) steps on one batch of 32 photos, one process, interleaved.

    Two definitions of a step, both reported: on cached image features (what `ecor.train.train` runs) and from pixels
    (the image tower's forward pass included, as when features are not cached). CPU time of the process is reported
    beside wall time: on a shared machine it is the steadier of the two."""
    import torch
    from ecor.rationales import load_dror, dror_file
    from ecor.model import ECOR
    from ecor.loss import method_loss
    torch.manual_seed(0)
    towers = towers_for(model_name, work)
    rset = load_dror(dror_file(GALLERIES[C]))
    px = towers.image.preprocess(photos(32))
    with torch.no_grad(): feats = towers.image.features(px)
    labels = torch.randint(len(rset), (32,), generator=torch.Generator().manual_seed(0))
    cats, rats, mem = rset.categories, rset.unique_rationales, rset.membership
    models = {k: ECOR(towers) for k in ('coop', 'ecor')}
    cfgs, banks = {}, {}
    for k, m in models.items(): cfgs[k], banks[k] = step_setup(m, k, loss, rset, sample_from)
    opts = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3) for k, m in models.items()}
    g = torch.Generator().manual_seed(1)
    tokens = {k: [0] for k in cfgs}    # text tokens of the prompts encoded with gradient (each prompt's own, padding not counted)
    for k, m in models.items(): count_tokens(m, tokens[k])
    every = {k: c.snapshot_every if c.takes_snapshots(len(rats)) else 0 for k, c in cfgs.items()}
    snaps, done = {}, {k: 0 for k in cfgs}
    def step(k, pixels):
        m = models[k]
        img = m.image_embeds(pixel_values=px) if pixels else m.image_embeds(features=feats)
        before = tokens[k][0]
        took = cfgs[k].snapshot_due(len(rats), done[k], k in snaps)   # as LossModule: the first step's, then every `snapshot_every`
        if took: snaps[k] = snapshot_for(m, cfgs[k], img, labels, mem, rats)
        done[k] += 1
        terms = method_loss(m, img, labels, cats, rats, mem, cfgs[k], generator=g, bank=banks[k], snapshot=snaps.get(k))
        opts[k].zero_grad(); terms['loss'].backward(); opts[k].step()
        return int(terms['prompts']) + (len(rats) if took else 0), tokens[k][0] - before
    cycle = max(every.values())  # snapshots: time whole cycles (one snapshot in every `cycle` steps) and take means, not medians
    agg = statistics.mean if cycle else statistics.median
    out = dict(model=model_name, C=C, R=len(rats), **({'loss': loss} if loss else {}), **({'steps_timed': f'means over {cycle}'} if cycle else {}))
    base = rss_mb()
    for pixels in (False, True):
        wall, cpu, prompts, toks = {k: [] for k in cfgs}, {k: [] for k in cfgs}, {k: [] for k in cfgs}, {k: [] for k in cfgs}
        for k in cfgs: step(k, pixels)                       # warm-up
        for _ in range(cycle or (steps if not pixels else max(2, steps // 2))):
            for k in cfgs:                                   # interleaved: drifts in machine load hit both alike
                t0, c0 = time.perf_counter(), time.process_time()
                n, t = step(k, pixels); prompts[k].append(n); toks[k].append(t)
                wall[k].append(time.perf_counter() - t0); cpu[k].append(time.process_time() - c0)
        tag = '_px' if pixels else ''
        for k in cfgs:
            out[f'{k}_s{tag}'], out[f'{k}_cpu{tag}'] = agg(wall[k]), agg(cpu[k])
            out[f'{k}_prompts'], out[f'{k}_tokens'] = statistics.mean(prompts[k]), statistics.mean(toks[k])
        out[f'ratio{tag}'] = out[f'ecor_s{tag}'] / out[f'coop_s{tag}']
        out[f'ratio_cpu{tag}'] = out[f'ecor_cpu{tag}'] / out[f'coop_cpu{tag}']
    out['peak_step_mb'] = rss_mb() - base        # what the steps added to the process's peak (both methods, both kinds)
    return out


def step_peak(model_name: str, C: int, work: Path, method: str, loss: str = '') -> dict:
    "Peak memory added by training steps of one method alone (a fresh process), on cached features; `loss` as in `train_step`."
    import torch
    from ecor.rationales import load_dror, dror_file
    from ecor.model import ECOR
    from ecor.loss import method_loss
    towers = towers_for(model_name, work)
    rset = load_dror(dror_file(GALLERIES[C]))
    with torch.no_grad(): feats = towers.image.features(towers.image.preprocess(photos(32)))
    labels = torch.randint(len(rset), (32,), generator=torch.Generator().manual_seed(0))
    m = ECOR(towers)
    cfg, bank = step_setup(m, method, loss, rset)      # the bank's one encoding comes before `base`: not counted
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    base = rss_mb()
    snap = None
    for i in range(3):
        img = m.image_embeds(features=feats)
        if i == 0 and cfg.takes_snapshots(len(rset.unique_rationales)):  # the snapshot's step, and two more
            snap = snapshot_for(m, cfg, img, labels, rset.membership, rset.unique_rationales)
        terms = method_loss(m, img, labels, rset.categories, rset.unique_rationales, rset.membership,
                            cfg, generator=torch.Generator().manual_seed(1), bank=bank, snapshot=snap)
        opt.zero_grad(); terms['loss'].backward(); opt.step()
    return dict(model=model_name, C=C, method=method, peak_step_mb=rss_mb() - base, peak_rss_mb=rss_mb())


# --------------------------------------------------------------------------------------------------------------------
def synthetic_pairs(m, spread: float) -> None:
    "Stand-in pair embeddings normalise(a_R + spread g_cR), unit a and g fixed by the column (a stand-in text tower, for warm costs)."
    import hashlib, torch
    import torch.nn.functional as F
    enc = m._encode
    dim = enc('r', [dict(rationale='whiskers')]).shape[1]
    def encode(which, fillers):
        if which != 'pair': return enc(which, fillers)
        seed = int(hashlib.sha1(json.dumps(fillers[0], sort_keys=True).encode()).hexdigest()[:15], 16)
        g = torch.Generator().manual_seed(seed)
        a = F.normalize(torch.randn(1, dim, generator=g), dim=-1)   # smaller spread: flatter P(c|R,I), more columns visited
        return F.normalize(a + spread * F.normalize(torch.randn(len(fillers), dim, generator=g), dim=-1), dim=-1)
    m._encode = encode


def explain_run(model_name: str, gallery: str, work: Path, cache: Path, n: int, phase: str, checkpoint: str, max_s: float,
                encode_sample: int = 10**9, synthetic: float = 0., certify: bool = False) -> dict:
    "One process: the image tower alone, then explain (search) against the gallery with the cache as it is."
    import torch
    from ecor.rationales import load_dror, dror_file
    from ecor.model import ECOR, ECORConfig
    torch.manual_seed(0)
    towers = towers_for(model_name, work)
    rset = load_dror(dror_file(gallery))
    cats, rats = rset.categories, rset.unique_rationales
    m = ECOR.from_pretrained(checkpoint, towers) if checkpoint else ECOR(towers, ECORConfig(learn_context=False))
    m.eval().use_gallery_cache(cache)
    if synthetic: synthetic_pairs(m, synthetic)   # the cache folder then holds stand-in pair embeddings: for this benchmark only
    ims = photos(n)
    if phase == 'cold' and max_s:       # give up (and say so) rather than run for hours on a model the bound cannot prune
        t_start = time.perf_counter()
        block = m._block                # every block a search asks for, scored or sketched: checked before each
        def limited(*a, **k):
            if time.perf_counter() - t_start > max_s: raise TimeoutError
            return block(*a, **k)
        m._block = limited
    with torch.no_grad():
        m.image_embeds(pixel_values=towers.image.preprocess(ims[:2]))    # warm the image tower's kernels
        tower = []
        for _ in range(3):
            t0 = time.perf_counter(); img = m.image_embeds(pixel_values=towers.image.preprocess(ims)); tower.append(time.perf_counter() - t0)
        def explain():   # one explain, image tower + search: (result, its time, the search's part of it)
            t0 = time.perf_counter(); img = m.image_embeds(pixel_values=towers.image.preprocess(ims)); t1 = time.perf_counter()
            res = m.search(img, cats, rats, k=5, certify=certify)
            return res, time.perf_counter() - t0, time.perf_counter() - t1
        try: res, t, s = explain()
        except TimeoutError:
            return dict(model=model_name, gallery=gallery, phase=phase, prompts='trained' if checkpoint else 'hand-written',
                        images=n, C=len(cats), R=len(rats), unfinished=f'stopped after {max_s:.0f}s', stopped_s=round(time.perf_counter() - t_start),
                        columns=m.gallery.stats['computed'] - 1, tower_s=statistics.median(tower), peak_rss_mb=rss_mb())
        total, search = [t], [s]
        if phase == 'warm':   # twice more, each from the disk again (the in-memory blocks forgotten), the tower alone between
            for _ in range(2):
                t0 = time.perf_counter(); m.image_embeds(pixel_values=towers.image.preprocess(ims)); tower.append(time.perf_counter() - t0)
                m.gallery.clear_memory()
                _, t, s = explain(); total.append(t); search.append(s)
    out = dict(model=model_name, gallery=gallery, phase=phase, prompts='trained' if checkpoint else 'hand-written', images=n,
               C=len(cats), R=len(rats), tower_s=statistics.median(tower), explain_s=statistics.median(total),
               explain_first_s=total[0], explain_all_s=[round(t, 3) for t in total], tower_all_s=[round(t, 3) for t in tower],
               search_s=statistics.median(search), search_over_tower=statistics.median(search) / statistics.median(tower),
               visited_mean=res.visited_fraction.mean().item(), visited_max=res.visited_fraction.max().item(),
               columns=int(res.visited.any(0).sum()), sketched_mean=res.ruled_out.float().mean(1).mean().item(),
               sketched_max=res.ruled_out.float().mean(1).max().item(), sketched_columns=int(res.ruled_out.any(0).sum()),
               peak_rss_mb=rss_mb(), **{f'cache_{k}': v for k, v in m.gallery.stats.items()})
    if synthetic: out['pairs'] = f'stand-in, spread {synthetic}'
    if certify: out.update(certify=True, certified=int((res.second_pred >= 0).sum()), unvisited_mean=res.unvisited.mean().item())
    if phase == 'cold' and not synthetic:  # the text work the search did, done again alone: the R rationale prompts + the visited columns
        cols = (res.visited | res.ruled_out).any(0).nonzero()[:, 0].tolist()  # a column ruled out by its sketch was encoded too
        # Beyond `encode_sample` columns (ImageNet: ~1 h each way on this CPU) a uniform random sample of them is encoded
        # and its time scaled by len(cols) / sample size; the result says so (`encode_columns_timed`).
        timed = cols if len(cols) <= encode_sample else sorted(random.Random(0).sample(cols, encode_sample))
        with torch.no_grad():
            t0 = time.perf_counter()
            m._encode('r', [dict(rationale=r) for r in rats])
            t1 = time.perf_counter()
            for a in timed: m._encode('pair', [dict(category=c, rationale=rats[a]) for c in cats])
            out['encode_only_s'] = (t1 - t0) + (time.perf_counter() - t1) * len(cols) / max(len(timed), 1)
            out['encode_columns_timed'] = len(timed)
    return out


def train_checkpoint(model_name: str, dataset: str, work: Path) -> str:
    "Prompts trained with the training defaults (exact softmaxes on CIFAR-10) on 1,000 photos, 4 epochs: sharper than hand-written."
    import torch
    from ecor.evaluate import load_split
    from ecor.model import ECOR
    from ecor.train import TrainConfig, train
    out = work/f'ckpt-{model_name}-{dataset}'
    if (out/'done').exists(): return str(out/'checkpoint-epoch3')
    towers = towers_for(model_name, work)
    tr = load_split(towers, dataset, 'train', 1000, cache_dir=work/'features', progress=False)
    torch.manual_seed(0)
    m = ECOR(towers)
    train(m, tr.feats, tr.labels, tr.rset, TrainConfig(epochs=4, output_dir=str(out), progress=False))
    (out/'done').write_text('')
    return str(out/'checkpoint-epoch3')


# --------------------------------------------------------------------------------------------------------------------
def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    if args.job == 'train': res = train_step(args.model, args.C, work, args.steps, args.sample_from, args.loss)
    elif args.job == 'peak': res = step_peak(args.model, args.C, work, args.method, args.loss)
    elif args.job == 'ckpt': res = dict(checkpoint=train_checkpoint(args.model, args.gallery, work))
    else: res = explain_run(args.model, args.gallery, work, Path(args.cache), args.images, args.phase, args.checkpoint, args.max_cold_s,
                           args.encode_sample, args.synthetic_pairs, args.certify)
    print('RESULT ' + json.dumps(res))


def run(*a) -> dict:
    "Run one configuration in a fresh process; return its RESULT."
    cmd = [sys.executable, __file__, '--child', '--threads', str(THREADS), *map(str, a)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false'))
    lines = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
    if p.returncode or not lines: raise RuntimeError(f'{cmd} failed:\n{p.stderr[-3000:]}')
    return json.loads(lines[-1][7:])


def md(rows: list[dict], cols: list[str]) -> str:
    f = lambda v: f'{v:.3g}' if isinstance(v, float) else str(v)
    return '\n'.join(['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)] + ['| ' + ' | '.join(f(r.get(c, '')) for c in cols) + ' |' for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--Cs', default='10,100,997', help='category counts of the training-step part')
    ap.add_argument('--sample_from', type=int, default=11, help='TrainConfig.sample_from: galleries with fewer categories train exactly (1: always sample)')
    ap.add_argument('--loss', default='', help='other LossConfig fields for ECOR\'s steps, as JSON (e.g. \'{"grad_rationales": 72}\'); default: the defaults')
    ap.add_argument('--job'); ap.add_argument('--method', default='ecor'); ap.add_argument('--model', default='default'); ap.add_argument('--C', type=int, default=10)
    ap.add_argument('--gallery', default='imagenet'); ap.add_argument('--phase', default='cold'); ap.add_argument('--cache')
    ap.add_argument('--checkpoint', default=''); ap.add_argument('--images', type=int, default=32)
    ap.add_argument('--steps', type=int, default=3, help='timed training steps per method (after one warm-up)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads per measurement (1: steady on a shared machine, '
                    'where spinning OpenMP threads inflate both wall and CPU time)')
    ap.add_argument('--max_cold_s', type=float, default=2400, help='a cold explain run that takes longer is stopped and reported')
    ap.add_argument('--encode_sample', type=int, default=200, help='cold runs visiting more pair columns time the encoding '
                    'of a random sample of this many of them and scale it (the R rationale prompts are always timed whole)')
    ap.add_argument('--synthetic_pairs', type=float, default=0., metavar='SPREAD', help='pair prompts get stand-in unit '
                    'vectors normalise(a_R + SPREAD g_cR), fixed by the column, instead of the text tower: fills a big gallery in '
                    'minutes, for warm costs; a smaller SPREAD flattens P(c|R,I), so more columns are visited (visited '
                    'fractions and cold times are the stand-in\'s, not the model\'s); 0: the text tower')
    ap.add_argument('--certify', action='store_true', help='explain as `explain` does on a large gallery: search on until each '
                    "photo's predicted category is certified (default: the exact top 5 alone)")
    ap.add_argument('--prompts', default='hand-written,trained')
    ap.add_argument('--parts', default='train,explain'); ap.add_argument('--models', default='default,clip')
    ap.add_argument('--galleries', default='cifar10,caltech101,cifar100,imagenet')
    ap.add_argument('--work', default=str(ROOT/'runs'/'bench_scale'))
    ap.add_argument('--out', default=str(ROOT/'runs'/'bench_scale'))
    args = ap.parse_args()
    if args.child: return child(args)
    global THREADS
    THREADS = args.threads
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True); out.mkdir(parents=True, exist_ok=True)
    models = args.models.split(',')
    if 'train' in args.parts:
        rows = []
        loss_args, ecor_loss = (('--loss', args.loss), f'LossConfig {args.loss}') if args.loss else ((), 'training defaults')
        for model in models:
            for C in map(int, args.Cs.split(',')):
                rows.append(run('--job', 'train', '--model', model, '--C', C, '--work', work, '--steps', args.steps, '--sample_from', args.sample_from, *loss_args))
                print(md(rows[-1:], list(rows[-1])), flush=True)
        print(f'\n## Training step: ECOR ({ecor_loss}, sample_from={args.sample_from}) / CoOp (full softmax), batch 32\n')
        print(md(rows, ['model', 'C', 'R', 'coop_prompts', 'ecor_prompts', 'coop_tokens', 'ecor_tokens', 'coop_s', 'ecor_s', 'ratio', 'ratio_cpu',
                        'coop_s_px', 'ecor_s_px', 'ratio_px', 'ratio_cpu_px', 'peak_step_mb']))
        peaks = [run('--job', 'peak', '--model', model, '--C', 997, '--method', meth, '--work', work, *loss_args) for model in models for meth in ('coop', 'ecor')]
        print(f'\n## Memory a training step adds at 997 categories (fresh process per method; ECOR: {ecor_loss})\n')
        print(md(peaks, ['model', 'C', 'method', 'peak_step_mb', 'peak_rss_mb']))
        (out/'train_steps.json').write_text(json.dumps(rows + peaks, indent=1))
    if 'explain' in args.parts:
        rows = []
        for model in models:
            for gallery in args.galleries.split(','):
                for prompts in args.prompts.split(','):
                    ck = run('--job', 'ckpt', '--model', model, '--gallery', 'cifar10', '--work', work)['checkpoint'] if prompts == 'trained' else ''
                    cache = Path(tempfile.mkdtemp(dir=work))/'gallery'
                    for phase in ('cold', 'warm'):
                        r = run('--job', 'explain', '--model', model, '--gallery', gallery, '--phase', phase, '--cache', cache,
                                '--checkpoint', ck, '--images', args.images, '--work', work, '--max_cold_s', args.max_cold_s,
                                '--encode_sample', args.encode_sample, *(['--synthetic_pairs', args.synthetic_pairs] if args.synthetic_pairs else []),
                                *(['--certify'] if args.certify else []))
                        rows.append(r); print(md([r], list(r)), flush=True)
                        if 'unfinished' in r: break        # no warm run over a half-filled cache
                        r['ratio_to_tower'] = r['explain_s'] / r['tower_s']
                        if phase == 'cold' and not args.synthetic_pairs:   # with the image tower's pass, and the text work alone (explain - tower)
                            r['cold_over_encode'] = r['explain_s'] / r['encode_only_s']
                            r['cold_text_over_encode'] = (r['explain_s'] - r['tower_s']) / r['encode_only_s']
        print('\n## Explaining a batch against a gallery (exact top-5 by the search' + (', on until the predicted category is certified' if args.certify else '') + ')\n')
        print(md(rows, ['model', 'gallery', 'prompts', 'phase', 'images', 'C', 'R', 'visited_mean', 'visited_max', 'columns', 'sketched_columns',
                        'tower_s', 'explain_s', 'ratio_to_tower', 'search_over_tower', 'cold_over_encode', 'cold_text_over_encode', 'peak_rss_mb', 'cache_disk', 'cache_computed', 'certified', 'unfinished']))
        (out/'explain.json').write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
