"""Measure rationale grounding (`ecor.grounding`): the pointing game and the cost against `explain` alone.

    .venv/bin/python tools/bench_grounding.py --n 300        # pointing game (default model; tiny random CLIP as a code-path check)
    .venv/bin/python tools/bench_grounding.py --cost         # seconds and ratios to explain, measured side by side
    .venv/bin/python tools/bench_grounding.py --n 300 --cost --out runs/grounding   # both, tables and overlays written

Pointing game: real photos (CIFAR-10 test, Caltech-101 train) pasted into one cell of a 3 x 3 canvas of other classes'
photos or of noise; for the true category's top three rationales, a hit when the map's peak falls in the pasted cell.
Baselines: the canvas centre and a random map. The embedded default model uses hand-written prompts; the tiny random
CLIP (no CLIP weights exist offline) only shows that the CLIP path runs end to end, its maps mean nothing.
Cost: seconds of `explain`, `ground` and `explain_grounded` on the same 16 photos (median and minimum of interleaved
runs, one torch thread by default) and image-tower passes per call, for the default model, the tiny CLIP and a random CLIP with ViT-B/32's shapes
(realistic compute). Everything is seeded; the pointing numbers change only with the code (and BLAS rounding).
On 2 CPU cores: about 20 minutes for `--n 300`, 6 for `--cost`.
"""
import argparse, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from ecor.data import load_image_dataset
from ecor.default import default_towers
from ecor.grounding import (GroundConfig, PointingConfig, explain_grounded, ground, make_composites, overlay,
                            pointing_accuracy, pointing_game)
from ecor.model import ECOR, ECORConfig, explain
from ecor.rationales import load_dror, dror_file
from ecor.towers import clip_towers, make_tiny_clip

SETS = [('CIFAR-10 test', 'cifar10', 'test'), ('Caltech-101', 'caltech101', 'train')]
C12 = ['accordion', 'airplanes', 'dalmatian', 'dragonfly', 'elephant', 'flamingo', 'llama', 'pizza', 'rooster',
       'soccer ball', 'starfish', 'umbrella']   # Caltech-101 categories that are ImageNet classes (the notebook's gallery)

def models(tmp:Path) -> dict:
    "The embedded default model and a tiny random CLIP, both with hand-written prompts."
    return {'default': ECOR(default_towers(), ECORConfig(learn_context=False)).eval(),
            'tiny random CLIP': ECOR(clip_towers(str(make_tiny_clip(tmp/'tiny_clip'))), ECORConfig(learn_context=False)).eval()}

def vit_b32_clip(path:Path) -> ECOR:
    "A random CLIP whose vision tower has ViT-B/32's shapes (224 px, 7 x 7 patches, 12 layers of 768): real costs, meaningless maps."
    from transformers import CLIPConfig, CLIPModel
    try: from transformers import CLIPImageProcessorPil as Processor
    except ImportError: from transformers import CLIPImageProcessor as Processor
    make_tiny_clip(path)   # its tokenizer; the model and the processor are replaced
    vocab = CLIPConfig.from_pretrained(path).text_config.vocab_size
    cfg = CLIPConfig(text_config=dict(vocab_size=vocab, hidden_size=512, intermediate_size=2048, num_hidden_layers=2, num_attention_heads=8,
                                      max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1),
                     vision_config=dict(image_size=224, patch_size=32, hidden_size=768, intermediate_size=3072,
                                        num_hidden_layers=12, num_attention_heads=12), projection_dim=512)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(path)
    Processor(size={'shortest_edge': 224}, crop_size={'height': 224, 'width': 224}).save_pretrained(path)
    return ECOR(clip_towers(str(path)), ECORConfig(learn_context=False)).eval()

def markdown(df:pd.DataFrame) -> str:
    "A Markdown table of a data frame (no tabulate dependency)."
    cells = [[str(c) for c in df.columns]] + [[f'{v:.3f}' if isinstance(v, float) else str(v) for v in r] for r in df.itertuples(index=False)]
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in cells[:1] + [['---'] * len(df.columns)] + cells[1:])

def ci95(df:pd.DataFrame, method:str) -> float:
    "Half-width of a normal 95% interval of the accuracy, over composites (the rationales of one composite are not independent)."
    per = df[df.method == method].groupby('composite').hit.mean()
    return 1.96 * per.std(ddof=1) / np.sqrt(len(per))

def analysis(df:pd.DataFrame) -> dict:
    "Why maps miss: accuracy when the model recognises the category or not, and how often the rationales' maps agree."
    pair = df[df.method == 'pair']
    out = dict(recognised=round(pair.groupby('composite').recognised.first().mean(), 3))
    for known, part in pair.groupby('recognised'): out['pair if ' + ('recognised' if known else 'not')] = round(part.hit.mean(), 3)
    for m in ('r', 'pair'):   # composites whose top rationales' maps all peak in one cell
        cells = df[df.method == m].assign(cell=lambda d: (d.x // 75).astype(int) * 10 + (d.y // 75).astype(int))
        out[f'{m}: one cell for all'] = round((cells.groupby('composite').cell.nunique() == 1).mean(), 3)
    return out

def pointing(ms:dict, n:int, n_tiny:int, seed:int, out:Path|None) -> tuple[pd.DataFrame, pd.DataFrame]:
    "The pointing-game table (model x data x background, accuracy per method and baseline) and the analysis table."
    rows, why = [], []
    for label, name, split in SETS:
        ds, rset = load_image_dataset(name, split), load_dror(dror_file(name))
        for bg in ('photos', 'noise'):
            ims, pos, cats = make_composites(ds, rset, n, bg, seed=seed)
            for mname, m in ms.items():
                k = n if mname == 'default' else n_tiny
                t0 = time.time()
                df = pointing_game(m, ims[:k], pos[:k], cats[:k], rset, PointingConfig(seed=seed))
                acc = pointing_accuracy(df)
                rows.append(dict(model=mname, data=label, background=bg, **acc.round(3).to_dict(),
                                 pair_ci95=round(ci95(df, 'pair'), 3), composites=df.composite.nunique(),
                                 pointings=int((df.method == 'pair').sum())))
                print(f'{mname:>16} | {label:>13} | {bg:>6} | ' + '  '.join(f'{a}={v:.3f}' for a, v in acc.items())
                      + f'  ({rows[-1]["composites"]} composites, {time.time() - t0:.0f}s)', flush=True)
                if mname == 'default':
                    why.append(dict(data=label, background=bg, **analysis(df)))
                    if out is not None: df.to_csv(out/f'pointing_{name}_{bg}.csv', index=False)
    return pd.DataFrame(rows), pd.DataFrame(why)

def timed(fn, reps:int) -> tuple[float, object]:
    "Median wall time of `fn()` over `reps` runs, and its last result."
    ts, res = [], None
    for _ in range(reps):
        t0 = time.perf_counter(); res = fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), res

def cost(ms:dict, n_images:int, k:int, reps:int) -> pd.DataFrame:
    "Seconds of explain, ground and explain_grounded on the same photos, interleaved, after a warm-up; ratios to explain."
    rows = []
    cifar, caltech = load_image_dataset('cifar10', 'test'), load_image_dataset('caltech101', 'train')
    settings = [('CIFAR-10 32 px, cifar10 gallery', [cifar[i]['image'] for i in range(n_images)], load_dror(dror_file('cifar10'))),
                ('Caltech-101 ~300 px, C12 gallery', [caltech[i]['image'] for i in range(0, 40 * n_images, 40)],
                 load_dror(dror_file('caltech101')).subset(C12))]
    for mname, m in ms.items():
        for label, ims, rset in settings:
            C, R = rset.categories, rset.unique_rationales
            ex = explain(m, ims, C, R, k); ground(m, ims, ex, C, R); explain_grounded(m, ims, C, R, k)   # warm the text caches
            passes = []   # image-tower forward passes (each over the whole batch) of one call of each
            net = m.image_tower.net._conv_stem if hasattr(m.image_tower, 'net') else m.image_tower.vision_model
            hook = net.register_forward_hook(lambda *_: passes.append(1))
            counts = []
            for fn in (lambda: explain(m, ims, C, R, k), lambda: ground(m, ims, ex, C, R), lambda: explain_grounded(m, ims, C, R, k)):
                passes.clear(); fn(); counts.append(len(passes))
            hook.remove()
            t = {}
            for _ in range(reps):   # interleaved, so load on the machine hits all three alike
                for name, fn in [('explain', lambda: explain(m, ims, C, R, k)),
                                 ('ground', lambda: ground(m, ims, ex, C, R)),
                                 ('explain_grounded', lambda: explain_grounded(m, ims, C, R, k))]:
                    t.setdefault(name, []).append(timed(fn, 1)[0])
            med = {a: statistics.median(v) for a, v in t.items()}
            low = {a: min(v) for a, v in t.items()}   # the least disturbed run: a shared machine only ever adds time
            rows.append(dict(model=mname, photos=label, images=len(ims), k=k, **{'tower passes e / g / eg': ' / '.join(map(str, counts))},
                             **{f'{a} s (median / min)': f'{med[a]:.2f} / {low[a]:.2f}' for a in t},
                             **{'(explain + ground) / explain': f"{(med['explain'] + med['ground']) / med['explain']:.2f} / "
                                                                f"{(low['explain'] + low['ground']) / low['explain']:.2f}",
                                'explain_grounded / explain': f"{med['explain_grounded'] / med['explain']:.2f} / "
                                                              f"{low['explain_grounded'] / low['explain']:.2f}"}))
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)

def overlays(m:ECOR, out:Path):
    "Overlays of three Caltech-101 photos (the notebook's figure) as PNG files."
    caltech, rset = load_image_dataset('caltech101', 'train'), load_dror(dror_file('caltech101')).subset(C12)
    for i in (4758, 1866, 4568):
        im = caltech[i]['image']
        (e,) = explain_grounded(m, [im], rset.categories, rset.unique_rationales, k=1)[0]
        overlay(im, e.heatmap).save(out/f'overlay_caltech{i}_{e.category.replace(" ", "-")}.png')

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=0, help='composites per data set and background (0: skip the pointing game)')
    p.add_argument('--n_tiny', type=int, default=50, help='composites for the tiny random CLIP (code-path check)')
    p.add_argument('--cost', action='store_true', help='time grounding against explain alone')
    p.add_argument('--images', type=int, default=16, help='photos per timed call')
    p.add_argument('--k', type=int, default=5, help='explanations per photo')
    p.add_argument('--reps', type=int, default=7, help='timed repetitions (median and minimum reported)')
    p.add_argument('--threads', type=int, default=1, help='torch threads for --cost (1: stable timings on a shared machine)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default='', help='folder for CSV / Markdown tables and overlay PNGs')
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    out = Path(a.out) if a.out else None
    if out is not None: out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        ms = models(Path(td))
        if a.n:
            tab, why = pointing(ms, a.n, min(a.n_tiny, a.n), a.seed, out)
            print('\n' + markdown(tab) + '\n\nDefault model, why maps miss:\n' + markdown(why))
            if out is not None:
                tab.to_csv(out/'pointing.csv', index=False); why.to_csv(out/'pointing_analysis.csv', index=False)
                (out/'pointing.md').write_text(markdown(tab) + '\n\n' + markdown(why) + '\n')
        if a.cost:
            torch.set_num_threads(a.threads)   # under load, two threads make tiny operations 50x slower (OpenMP barriers)
            tab = cost(ms | {'random CLIP, ViT-B/32 shapes': vit_b32_clip(Path(td)/'vit_b32')}, a.images, a.k, a.reps)
            print('\n' + markdown(tab))
            if out is not None: tab.to_csv(out/'cost.csv', index=False); (out/'cost.md').write_text(markdown(tab) + '\n')
        if out is not None: overlays(ms['default'], out); print(f'written: {out}/')

if __name__ == '__main__':
    main()
