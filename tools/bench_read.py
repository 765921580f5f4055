"""What reading a block of the gallery cache costs, mapped against read in, side by side in one process.

    python tools/bench_read.py            # blocks of 10, 100 and 997 rows x 384 floats (CIFAR-10, Caltech-101/CIFAR-100, ImageNet)
    python tools/bench_read.py --search runs/bench_scale/<folder>/gallery --gallery imagenet \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3   # whole searches over a filled cache

Writes random blocks with `ecor.cache.GalleryCache` into a temporary folder (so they are in the page cache, as in a warm
run), then reads each one back the way `GalleryCache` does, verification included (header, key, shape, XXH3), with
every file memory-mapped and with every file read into fresh memory, alternating 5 times. Prints the median time per
block of each and their ratio. `ecor.cache._MAP_FROM` (1 MiB) is the size from which the cache maps; 255 rows of 384
floats are about the size of a 997-row block's 8-bit sketch (`ecor.cache.sketch_block`), which is read in.

With --search: the warm explain of `tools/bench_scale.py` (32 photos, exact top 5; --model default or clip) over a
cache folder that a cold run filled, in one process: the search alone two or three ways, alternating, the in-memory blocks
forgotten before each, and the image tower alone between. --compare maps (the default): the cache's own rule (map from
1 MiB: an ImageNet column's 0.39 MB sketch is read in) against mapping from 256 KiB (the sketch mapped too) and every
file read in. --compare products, three ways: wide products (`ECOR.block_scores` as it is: one
product of up to 64 rows, 4 rows for 1 to 4 images, wherever `rows_independent` finds the width agrees with products of
8), products of 8 images only (as a library whose wider products disagree), and one image at a time (as a library that
fails `rows_independent` altogether):

    python tools/bench_read.py --search runs/bench_scale/<folder>/gallery --gallery imagenet --compare products \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3

--widths times nothing but matrix products: for blocks of 997 x 384, 997 x 512 and 100 x 384 floats, whether each width
(4, 8, 16, 24, 32, 64 rows) gives every row the bits that products of 8 give it (`ecor.model.rows_independent`), and one
product of that width against the products of 8 it replaces (the block in the CPU's cache, one thread, medians):

    python tools/bench_read.py --widths

--compare visits times nothing: it counts the columns the search scored for each photo against the fewest that any
exact search with the same bound must score, those whose P(R|I) is at least the photo's 5th best joint, at step 8, 4
and 16 (columns each photo asks for per round).

--compare floor times the whole search against that floor: only the columns any exact search with the same bound must
score for each photo, known beforehand: P(R|I) over the gallery, then those columns read, verified and scored in one
call of `ECOR.conditional` (each block once, its photos scored as `block_scores` does), with no rounds and no bookkeeping.
(tower + floor) / tower is the least a warm explain with this bound and this cache can cost:

    python tools/bench_read.py --search runs/bench_scale/<folder>/gallery --gallery imagenet --compare floor \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3

--compare steps times whole searches asking for 8, 16, 32 and 64 columns a round (fewer rounds, more columns), alternating.

--compare sketches: the search bounding each column by its 8-bit sketch before reading it (`ECOR.search(sketches=True)`,
the default for blocks of 1 MiB or more with a cache folder) against reading every column the bound P(R|I) admits
(`sketches=False`); both must return the same top 5. A folder filled before sketches existed gets them on the first
(untimed) pass:

    python tools/bench_read.py --search runs/bench_scale/<folder> --gallery imagenet --compare sketches \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3

--compare compiled: the search with its sketch bounds from the compiled kernel (`compiled_top`, numba; the default on
the CPU) against the same search bounding with torch (`sketch_bound(compiled=False)`); both must return the same top 5:

    python tools/bench_read.py --search runs/bench_scale/<folder> --gallery imagenet --compare compiled \
        --checkpoint runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3

--compare slack times nothing: of the columns the bound admits for each photo, how many a tighter bound on
max_c log P(c|R,I) would still admit: the exact maximum (an oracle), and the cap from each column's spread,
log P(c|R,I) <= tau * max_c |t_cR - mean_c t_cR| - log C (Jensen: the mean of a column's scores is the score of its mean).
Where the search uses sketches, also how far the sketch bound sits above the exact maximum, and how many of those
entries (and whole columns) a first stage 0.5, 1, 2 or 4 nats looser than the sketch would still rule out.
"""
from __future__ import annotations
import argparse, statistics, tempfile, time
from pathlib import Path
import torch
import ecor.cache as cache


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', default='10,100,255,997'); ap.add_argument('--dim', type=int, default=384)
    ap.add_argument('--mib', type=float, default=256, help='bytes written per block size, in MiB')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--search', help='a gallery cache folder filled by tools/bench_scale.py: time whole searches instead')
    ap.add_argument('--gallery', default='imagenet'); ap.add_argument('--checkpoint')
    ap.add_argument('--model', default='default', help="with --search: 'default' or 'clip' (bench_scale's random ViT-B/32)")
    ap.add_argument('--compare', default='maps', choices=('maps', 'products', 'visits', 'floor', 'steps', 'slack', 'sketches', 'compiled'), help='with --search: what to compare or count (see above)')
    ap.add_argument('--widths', action='store_true', help='time wide matrix products against products of 8 (see above)')
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.widths: return widths(args.repeats)
    if args.search: return searches(args)
    saved = cache._MAP_FROM
    with tempfile.TemporaryDirectory() as d:
        print(f'{"rows":>5} {"block":>9} {"blocks":>6} {"read in, us":>12} {"mapped, us":>11} {"mapped / read in":>17}')
        for n in map(int, args.rows.split(',')):
            g = cache.GalleryCache(Path(d), max_bytes=1 << 40)
            blocks = max(1, int(args.mib * 2**20 / (n * args.dim * 4)))
            keys = [f'{n}-{i}' for i in range(blocks)]
            for k in keys: g.fetch('bench', k, n, lambda: torch.randn(n, args.dim))
            paths = [g.path('bench', k) for k in keys]
            times = {'read': [], 'map': []}
            for _ in range(args.repeats):
                for how, limit in (('read', 1 << 62), ('map', 0)):
                    cache._MAP_FROM = limit
                    t0 = time.perf_counter()
                    for p, k in zip(paths, keys): assert g._read(p, k, n) is not None
                    times[how].append((time.perf_counter() - t0) / blocks * 1e6)
            cache._MAP_FROM = saved
            r, m = statistics.median(times['read']), statistics.median(times['map'])
            size = paths[0].stat().st_size
            print(f'{n:>5} {size/1024:>7.0f}KB {blocks:>6} {r:>12.0f} {m:>11.0f} {m/r:>17.2f}', flush=True)


def widths(repeats:int, shapes=((997, 384), (997, 512), (100, 384)), sizes=(4, 8, 16, 24, 32, 64)):
    "One product of each width against the products of 8 it replaces; whether the width agrees with them, bit for bit."
    from ecor.model import rows_independent
    print(f'{"block":>10} {"rows":>4} {"agrees":>6} {"one product, us":>16} {"products of 8, us":>18} {"ratio":>6}')
    for M, K in shapes:
        t = torch.randn(M, K)
        for w in sizes:
            x = torch.randn(w, K)
            eights = torch.cat([x, x.new_zeros(-w % 8, K)]).split(8)
            ways = {'one': lambda: x @ t.T, 'eights': lambda: [e @ t.T for e in eights]}
            n = max(3, 200_000_000 // (M * K * w))         # about 0.02-0.1 s a timing
            times = {k: [] for k in ways}
            for i in range(repeats):
                for k in ways if i % 2 == 0 else list(ways)[::-1]:
                    f = ways[k]; f(); t0 = time.perf_counter()
                    for _ in range(n): f()
                    times[k].append((time.perf_counter() - t0) / n * 1e6)
            one, eight = statistics.median(times['one']), statistics.median(times['eights'])
            print(f'{M:>5} x {K:<3} {w:>4} {str(rows_independent(M, K, torch.float32, "cpu", w)):>6} {one:>16.0f} {eight:>18.0f} {one / eight:>6.2f}', flush=True)


def alternate(tower, ways:dict, repeats:int, before) -> tuple[dict, dict, dict]: # (medians, every pass, each way's last result)
    "`repeats` passes: `tower()` timed, then each of `ways` timed, in alternating order, `before(way)` untimed before each."
    times, last, names = {'tower': [], **{k: [] for k in ways}}, {}, list(ways)
    for i in range(repeats):
        t0 = time.perf_counter(); tower(); times['tower'].append(time.perf_counter() - t0)
        for k in names if i % 2 == 0 else names[::-1]:
            before(k); t0 = time.perf_counter(); last[k] = ways[k](); times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, times, last


def searches(args):
    "Whole warm searches two or three ways (--compare), alternating in one process."
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_scale import photos, towers_for
    import ecor.model
    from ecor.model import ECOR
    from ecor.rationales import dror_file, load_dror
    towers, rset = towers_for(args.model, Path('runs/bench_scale')), load_dror(dror_file(args.gallery))
    m = ECOR.from_pretrained(args.checkpoint, towers) if args.checkpoint else ECOR(towers)
    m.eval().use_gallery_cache(args.search)
    if args.compare == 'visits': return visits(m, towers, rset, photos(32))
    if args.compare == 'floor': return floor(m, towers, rset, photos(32), args.repeats)
    if args.compare == 'steps': return steps(m, towers, rset, photos(32), args.repeats)
    if args.compare == 'slack': return slack(m, towers, rset, photos(32))
    saved, grouped, kernel = cache._MAP_FROM, ecor.model.rows_independent, ecor.model.compiled_top()
    def setting(map_from, rows_independent, top=kernel):
        def apply(): cache._MAP_FROM, ecor.model.rows_independent, ecor.model._KERNELS['top'] = map_from, rows_independent, top
        return apply
    ways = ({'compiled': setting(saved, grouped), 'torch': setting(saved, grouped, None)} if args.compare == 'compiled' else
            {f'mapped from {saved >> 10} KiB': setting(saved, grouped), 'mapped from 256 KiB': setting(1 << 18, grouped),
             'all read in': setting(1 << 62, grouped)} if args.compare == 'maps' else
            {'sketches': setting(saved, grouped), 'no sketches': setting(saved, grouped)} if args.compare == 'sketches' else
            {'wide products': setting(saved, grouped), 'products of 8': setting(saved, lambda M, K, dt, dev, width=8: width == 8 and grouped(M, K, dt, dev)),
             'one image at a time': setting(saved, lambda *a, **k: False)})
    names, ims, st = list(ways), photos(32), {}
    def tower(): st['img'] = m.image_embeds(pixel_values=towers.image.preprocess(ims))
    def search(**kw): return lambda: m.search(st['img'], rset.categories, rset.unique_rationales, k=5, certify=False, **kw)
    runs = {k: search(sketches=k == 'sketches') if args.compare == 'sketches' else search() for k in ways}
    with torch.no_grad():
        m.image_embeds(pixel_values=towers.image.preprocess(ims[:2]))
        if args.compare == 'sketches': tower(); runs['sketches']()   # an older folder gets its sketches here, untimed
        med, times, last = alternate(tower, runs, args.repeats, lambda k: (ways[k](), m.gallery.clear_memory()))
    setting(saved, grouped)()
    print(' '.join(f'{k}: {med[k]:.2f} s' for k in med), '| each pass:', {k: [round(x, 2) for x in v] for k, v in times.items()})
    if args.compare == 'compiled':
        a, b = last['compiled'], last['torch']
        assert all(torch.equal(x, y) for x, y in zip(a.top, b.top)), 'the two searches disagree'
        print(f'same top 5; same entries computed and ruled out: {torch.equal(a.visited, b.visited) and torch.equal(a.ruled_out, b.ruled_out)}')
    if args.compare == 'sketches':
        a, b = last['sketches'], last['no sketches']
        assert all(torch.equal(x, y) for x, y in zip(a.top, b.top)), 'the two searches disagree'
        print(f'same top 5; float32 blocks read: {int(a.visited.any(0).sum())} with sketches, {int(b.visited.any(0).sum())} without; '
              f'entries computed {int(a.visited.sum())} (+{int(a.ruled_out.sum())} ruled out by sketches) against {int(b.visited.sum())}')
    print('; '.join(f'search {names[0]} / {k}: {med[names[0]] / med[k]:.2f}' for k in names[1:]),
          '; (tower + search) / tower:', ', '.join(f'{k} {1 + med[k] / med["tower"]:.2f}' for k in names))


def floor(m, towers, rset, ims, repeats):
    "The whole warm search against scoring only the columns the bound makes necessary, alternating in one process."
    cats, rats = rset.categories, rset.unique_rationales
    with torch.no_grad():
        img = m.image_embeds(pixel_values=towers.image.preprocess(ims))
        res = m.search(img, cats, rats, k=5, certify=False)
        n, a = (res.log_first >= res.top.log_prob[:, -1:]).nonzero(as_tuple=True)   # the columns any exact search must score
        def search(): m.search(img, cats, rats, k=5, certify=False)
        def least(): m.first_factor(img, cats, rats); m.conditional(img, cats, rats, 'rationale', a, images=n)
        med, times, _ = alternate(lambda: m.image_embeds(pixel_values=towers.image.preprocess(ims)), {'search': search, 'floor': least},
                                  repeats, lambda k: m.gallery.clear_memory())
    print(f'columns: {len(a)} (photo, column) entries, {len(a.unique())} blocks; searched: {int(res.visited.sum())} entries, '
          f'{int(res.visited.any(0).sum())} blocks')
    print(' '.join(f'{k}: {med[k]:.2f} s' for k in med), '| each pass:', {k: [round(x, 2) for x in v] for k, v in times.items()})
    print(f"(tower + search) / tower: {1 + med['search'] / med['tower']:.2f}; (tower + floor) / tower: {1 + med['floor'] / med['tower']:.2f}; "
          f"search / floor: {med['search'] / med['floor']:.2f}")


def steps(m, towers, rset, ims, repeats, sizes=(8, 16, 32, 64)):
    "Whole warm searches asking for `sizes` columns a round, alternating in one process."
    cats, rats = rset.categories, rset.unique_rationales
    st = {}
    def tower(): st['img'] = m.image_embeds(pixel_values=towers.image.preprocess(ims))
    def search(s): return lambda: m.search(st['img'], cats, rats, k=5, certify=False, step=s)
    with torch.no_grad(): med, _, last = alternate(tower, {s: search(s) for s in sizes}, repeats, lambda k: m.gallery.clear_memory())
    scored = {s: (int(r.visited.sum()), int(r.visited.any(0).sum())) for s, r in last.items()}
    print(f"tower: {med['tower']:.2f} s")
    for s in sizes: print(f'step {s:2d}: search {med[s]:.2f} s, (tower + search) / tower {1 + med[s] / med["tower"]:.2f}, '
                          f'{scored[s][0]} photo-column entries, {scored[s][1]} blocks')


def slack(m, towers, rset, ims):
    "Columns the bound admits against those an exact max_c log P(c|R,I), or a cap from the column's spread, would admit."
    import math
    cats, rats = rset.categories, rset.unique_rationales
    with torch.no_grad():
        img = m.image_embeds(pixel_values=towers.image.preprocess(ims))
        res = m.search(img, cats, rats, k=5, certify=False)
        kth, lf = res.top.log_prob[:, -1], res.log_first
        n, a = (lf >= kth[:, None]).nonzero(as_tuple=True)              # the columns the bound admits
        best = m.conditional(img, cats, rats, 'rationale', a, images=n).max(1).values
        spread, ns, cd = {}, m.namespace('pair'), m.names_digest(cats)
        for r in a.unique().tolist():   # the column's spread, image-independent (the cached block `ECOR.pair_logits` reads)
            e = m._block('pair', ns, f'col|{rats[r]}|{cd}', len(cats), lambda: None)
            spread[r] = float(m.cosine_scale * (e - e.mean(0)).norm(dim=1).max() - math.log(len(cats)))
        capped = torch.tensor([spread[r] for r in a.tolist()])
        print(f'columns the bound admits: {len(a)} photo-column entries; with the exact max_c log P(c|R,I) (an oracle): '
              f'{int((lf[n, a] + best >= kth[n]).sum())}; with the spread cap: {int((lf[n, a] + capped.clamp(max=0) >= kth[n]).sum())}')
        q = torch.tensor([.1, .5, .9])
        print(f'max_c log P(c|R,I) over those entries, 10/50/90 %: {[round(x, 2) for x in best.quantile(q).tolist()]}; '
              f'the spread cap, tau * rho - log C: {[round(x, 2) for x in capped.quantile(q).tolist()]} (cosine scale tau = {float(m.cosine_scale):.1f})')
        if not m.use_sketches(len(cats), img.shape[1]): return
        # the sketch bound on the same entries, and how much looser a cheaper first stage could be and still rule them out
        sb, room = m.pair_bound(img, cats, rats, 'rationale', a, n), (kth[n] - lf[n, a]).double()
        print(f'sketch bound - exact max, 10/50/90/100 %: {[round(x, 2) for x in (sb - best.double()).quantile(torch.tensor([.1, .5, .9, 1.], dtype=torch.float64)).tolist()]}; '
              f'5th joint - log P(R|I), 10/50/90 %: {[round(x, 2) for x in room.quantile(q.double()).tolist()]}')
        cols = a.unique()
        for extra in (0., .5, 1., 2., 4.):
            kept = sb + extra >= room                                    # entries a bound this much looser would admit
            left = torch.zeros(len(rats), dtype=torch.bool); left[a[kept]] = True
            print(f'a bound {extra} nats looser than the sketch: rules out {float((~kept).double().mean()):.3f} of the entries, '
                  f'all the entries of {int((~left[cols]).sum())} of the {len(cols)} columns')


def visits(m, towers, rset, ims):
    "Columns scored per photo (and for the batch) against the fewest the bound allows: P(R|I) >= the 5th best joint."
    with torch.no_grad():
        img = m.image_embeds(pixel_values=towers.image.preprocess(ims))
        for step in (8, 4, 16):
            res = m.search(img, rset.categories, rset.unique_rationales, k=5, certify=False, step=step)
            need = res.log_first >= res.top.log_prob[:, -1:]
            print(f'step {step:2d}: columns per photo {res.visited.sum(1).float().mean():.1f} scored, {need.sum(1).float().mean():.1f} '
                  f'needed; for the batch {int(res.visited.any(0).sum())} scored, {int(need.any(0).sum())} needed')


if __name__ == '__main__':
    main()
