"""The warm search of an earlier commit against the working tree's, alternating in one process (medians), results compared.

    python tools/bench_revisions.py --rev 402dafa --cache runs/bench_scale/<folder>/gallery --gallery imagenet \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3 [--model clip] [--certify]

`git archive` puts the `ecor` package of `--rev` in a temporary folder under another name (`ecor_rev`), so both versions
are imported side by side and share the image tower, the photos and the cache folder (the checkpoint is loaded by each
version's own `from_pretrained`). Each repeat times the image tower once, then one warm search of each version (the
in-memory blocks forgotten before each, the order alternating), on the 32 photos and the gallery of
`tools/bench_scale.py`'s warm explain (exact top 5). Both must return the same top 5, marginal bounds and visits, and
neither may encode a block (the folder must hold what they visit: a warm folder of `tools/bench_scale.py`). Prints the
medians and the current search's time over the earlier one's. Where the working tree bounds columns by their 8-bit
sketches (`ECOR.search(sketches=...)`: `--sketches auto`, the library's default, or `on`) and the earlier commit did not,
it computes fewer pairs, so its marginal bounds are looser: then the top 5 must be the same, and (without --certify) the
columns it computed plus those its sketches ruled out must be the columns the earlier search computed.
"""
from __future__ import annotations
import argparse, importlib, subprocess, sys, tempfile
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parent.parent


def package_at(rev: str, into: Path):
    "The `ecor` package as it was at commit `rev`, imported as `ecor_rev`."
    try: tar = subprocess.run(['git', 'archive', rev, 'ecor'], cwd=ROOT, check=True, capture_output=True).stdout
    except subprocess.CalledProcessError as e: sys.exit(f'bench_revisions: git archive {rev} failed: {e.stderr.decode().strip()}')
    subprocess.run(['tar', '-x', '-C', str(into)], input=tar, check=True)
    (into/'ecor').rename(into/'ecor_rev')
    sys.path.insert(0, str(into))
    return importlib.import_module('ecor_rev.model')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rev', default='HEAD~1', help='the earlier commit')
    ap.add_argument('--cache', required=True, help='a warm gallery cache folder (tools/bench_scale.py)')
    ap.add_argument('--gallery', default='imagenet'); ap.add_argument('--checkpoint', required=True)
    ap.add_argument('--model', default='default', help="'default' or 'clip' (bench_scale's random ViT-B/32)")
    ap.add_argument('--certify', action='store_true', help='search until the predicted category is certified too')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--sketches', default='auto', choices=('auto', 'on', 'off'), help="the working tree's search: sketches as the library decides, or forced")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT/'tools'))
    from bench_scale import photos, towers_for
    from bench_read import alternate
    from ecor.model import ECOR
    from ecor.rationales import dror_file, load_dror
    with tempfile.TemporaryDirectory() as tmp:
        old = package_at(args.rev, Path(tmp))
        towers, rset = towers_for(args.model, ROOT/'runs'/'bench_scale'), load_dror(dror_file(args.gallery))
        cats, rats = rset.categories, rset.unique_rationales
        models = {args.rev: old.ECOR.from_pretrained(args.checkpoint, towers), 'working tree': ECOR.from_pretrained(args.checkpoint, towers)}
        for m in models.values(): m.eval().use_gallery_cache(args.cache)
        names, ims, st = list(models), photos(32), {}
        def tower(): st['img'] = models[names[1]].image_embeds(pixel_values=towers.image.preprocess(ims))
        kw = {names[1]: {} if args.sketches == 'auto' else dict(sketches=args.sketches == 'on'), names[0]: {}}
        def search(k): return lambda: models[k].search(st['img'], cats, rats, k=5, certify=args.certify, **kw[k])
        with torch.no_grad():
            tower()
            first = {k: search(k)() for k in models}
            med, times, _ = alternate(tower, {k: search(k) for k in models}, args.repeats, lambda k: models[k].gallery.clear_memory())
        a, b = (first[k] for k in names)
        ruled = getattr(b, 'ruled_out', None)
        sketched = ruled is not None and bool(ruled.any()) and getattr(a, 'ruled_out', None) is None
        same = all(torch.equal(x, y) for x, y in zip(a.top, b.top))
        if sketched: same = same and (args.certify or torch.equal(b.visited | ruled, a.visited))
        else: same = same and all(torch.equal(x, y) for x, y in zip(a[1:6], b[1:6]))
        computed = {k: m.gallery.stats['computed'] for k, m in models.items()}
    print(' '.join(f'{k}: {v:.3f} s' for k, v in med.items()), '| each pass:', {k: [round(x, 3) for x in v] for k, v in times.items()})
    print(f"(tower + search) / tower: {args.rev} {1 + med[names[0]] / med['tower']:.3f}, working tree {1 + med[names[1]] / med['tower']:.3f}; "
          f"search, working tree / {args.rev}: {med[names[1]] / med[names[0]]:.3f}")
    if sketched: print(f'working tree with sketches: float32 columns read {int(b.visited.any(0).sum())} against {int(a.visited.any(0).sum())}, '
                       f'entries computed {int(b.visited.sum())} (+{int(ruled.sum())} ruled out) against {int(a.visited.sum())}')
    print(f'same top 5, {"computed + ruled out = computed before" if sketched else "marginal bounds and visits"}: {same}; blocks encoded (must be 0): {computed}')
    if not same or any(computed.values()): sys.exit(1)


if __name__ == '__main__': main()
