"""What a cold search keeps in memory with and without `ecor.cache.trim_heap`, side by side; and what trimming costs.

    python tools/bench_memory.py --minutes 10   # two cold searches on fresh cache folders, one process each, side by side
    python tools/bench_memory.py --speed 10     # the same ImageNet columns encoded with and without a trim after each

The first runs the cold explain of `tools/bench_scale.py` (32 photos, exact top 5, `certify=False`, the default model,
prompts trained by it on CIFAR-10, one torch thread, the cache's default 256 MiB memory budget) in two processes at
once, each on an empty folder: one as the library is (`trim_heap` after every block that took 0.25 s or more to
compute), one with trimming off (`ecor.cache._TRIM_AFTER_S = inf`). Every minute each prints the columns it has
computed, its RSS and peak RSS (`VmHWM`), and glibc's main heap as `mallinfo2` sees it (size, in use, free); after
`--minutes` both stop. The second times encoding ImageNet pair columns (997 prompts each) with and without
`malloc_trim(0)` after each, the same columns both ways, in blocks of 4 alternating which goes first, in one process,
and prints the ratio of the total times (trim / none).

Needs the checkpoint `tools/bench_scale.py` trains (`runs/bench_scale/ckpt-default-cifar10/checkpoint-epoch3`;
`python tools/bench_scale.py --parts explain` makes it) and glibc for the heap figures.
"""
from __future__ import annotations
import argparse, ctypes, json, math, os, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in 'arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost'.split()]


def heap_mib() -> dict:  # glibc's main heap: size, in use and free, MiB ({} where there is no `mallinfo2`)
    try: f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError): return {}
    f.restype = _MallInfo2
    m = f()
    return dict(heap=m.arena >> 20, in_use=m.uordblks >> 20, free=m.fordblks >> 20)


def status_mib(field: str) -> int:
    for line in open('/proc/self/status'):
        if line.startswith(field): return int(line.split()[1]) // 1024
    return -1


def model_and_gallery(gallery: str, checkpoint: str):
    import torch
    import bench_scale as B
    from ecor.model import ECOR
    from ecor.rationales import load_dror, dror_file
    torch.set_num_threads(1)
    towers = B.towers_for('default', ROOT/'runs'/'bench_scale')
    rset = load_dror(dror_file(gallery))
    return ECOR.from_pretrained(checkpoint, towers).eval(), towers, rset.categories, rset.unique_rationales


def child(args):
    import torch
    import bench_scale as B
    import ecor.cache
    from ecor.cache import GalleryCache
    if args.child == 'off': ecor.cache._TRIM_AFTER_S = math.inf
    m, towers, cats, rats = model_and_gallery(args.gallery, args.checkpoint)
    m.use_gallery_cache(GalleryCache(args.cache))
    t0 = time.time()
    def report(final=False):
        print(json.dumps(dict(trim=args.child, minute=round((time.time() - t0) / 60, 1), columns=m.gallery.stats['computed'],
                              rss=status_mib('VmRSS'), peak=status_mib('VmHWM'), final=final, **heap_mib())), flush=True)
    def watch():
        while True:
            report()
            if time.time() - t0 >= args.minutes * 60: report(True); os._exit(0)
            time.sleep(max(0., min(60., t0 + args.minutes * 60 - time.time())))
    threading.Thread(target=watch, daemon=True).start()
    with torch.no_grad():
        img = m.image_embeds(pixel_values=towers.image.preprocess(B.photos(32)))
        m.search(img, cats, rats, k=5, certify=False)
    report(True)


def rss_compare(args):
    folders = {mode: tempfile.mkdtemp(prefix=f'bench_memory_{mode}_') for mode in ('on', 'off')}   # empty: a cold search
    cmd = lambda mode: [sys.executable, __file__, '--child', mode, '--minutes', str(args.minutes), '--gallery', args.gallery,
                        '--checkpoint', args.checkpoint, '--cache', folders[mode]]
    procs = {mode: subprocess.Popen(cmd(mode), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for mode in folders}
    rows = {}
    def collect(mode):
        rows[mode] = [json.loads(line) for line in procs[mode].stdout if line.startswith('{')]
    threads = [threading.Thread(target=collect, args=(mode,)) for mode in procs]
    for t in threads: t.start()
    for t in threads: t.join()
    for p in procs.values(): p.wait()
    for f in folders.values(): shutil.rmtree(f, ignore_errors=True)
    print(f'## Cold search, {args.gallery}, two processes side by side: trim_heap on / off (MiB)\n')
    print('| minute | columns on / off | RSS on / off | peak RSS on / off | heap on / off | heap free on / off |')
    print('|---|---|---|---|---|---|')
    for a, b in zip(rows['on'], rows['off']):
        pair = lambda k: f"{a.get(k, '–')} / {b.get(k, '–')}"
        print(f"| {a['minute']}{' (end)' if a['final'] else ''} | {pair('columns')} | {pair('rss')} | {pair('peak')} | {pair('heap')} | {pair('free')} |")


def speed(args):
    import torch
    from ecor.cache import trim_heap
    m, _, cats, rats = model_and_gallery(args.gallery, args.checkpoint)
    tot, n = {True: 0., False: 0.}, {True: 0, False: 0}
    enc = lambda i: m._encode('pair', [dict(category=c, rationale=rats[i]) for c in cats])
    with torch.no_grad():
        enc(0)
        for blk in range(args.speed):
            for trim in ((True, False) if blk % 2 == 0 else (False, True)):
                for i in range(1 + 4 * blk, 5 + 4 * blk):
                    t = time.perf_counter(); enc(i)
                    if trim: trim_heap()
                    tot[trim] += time.perf_counter() - t; n[trim] += 1
            print(f'block {blk + 1}: trim / none {tot[True] / tot[False]:.4f} ({tot[True] / n[True]:.3f} s against '
                  f'{tot[False] / n[False]:.3f} s a column, {n[True]} columns each)', flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--minutes', type=float, default=10, help='how long each cold search runs')
    ap.add_argument('--speed', type=int, default=0, help='time this many blocks of 4 columns with and without trimming instead')
    ap.add_argument('--gallery', default='imagenet')
    ap.add_argument('--checkpoint', default=str(ROOT/'runs'/'bench_scale'/'ckpt-default-cifar10'/'checkpoint-epoch3'))
    ap.add_argument('--child', choices=['on', 'off'], help=argparse.SUPPRESS)
    ap.add_argument('--cache', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child: child(args)
    elif args.speed: speed(args)
    else: rss_compare(args)


if __name__ == '__main__':
    main()
