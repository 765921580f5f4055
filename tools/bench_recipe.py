"""Per-image, per-prompt and per-step costs of random CLIPs shaped like ViT-B/32 and ViT-L/14, for the run-time
estimates of the reproduction recipe (README, nbs/10_evaluate).

    python tools/bench_recipe.py                    # B/32 and L/14, about 15 minutes on one CPU core
    python tools/bench_recipe.py --models b32       # B/32 only

Random weights have the real checkpoints' shapes, so their FLOPs (and time) are the real ones'. Everything runs on the
CPU with one torch thread (steady on a shared machine); GPU times cannot be measured here. Medians of repeated runs.
Prints a markdown table and writes --out (JSON).
"""
from __future__ import annotations
import argparse, json, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from bench_scale import make_clip_b32, photos   # noqa: E402  (same random ViT-B/32 and the same photos)

L14 = dict(vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              patch_size=14, image_size=224),
           text_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
           projection_dim=768)   # openai/clip-vit-large-patch14's shapes


def make_clip_l14(path: Path) -> Path:
    "A random CLIP with ViT-L/14's shapes, on the tokenizer and image processor of `make_clip_b32`."
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel, CLIPImageProcessorPil
    if (path/'config.json').exists(): return path
    b32 = make_clip_b32(path.parent/'clip-b32')
    tok = AutoTokenizer.from_pretrained(str(b32))
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok), bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                      pad_token_id=tok.pad_token_id, **L14['text_config']),
                     vision_config=L14['vision_config'], projection_dim=L14['projection_dim'], logit_scale_init_value=4.6052)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    CLIPImageProcessorPil.from_pretrained(str(b32)).save_pretrained(path)
    return path


def timed(fn, reps: int) -> float:
    fn()                                           # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return statistics.median(out)


def measure(model: str, work: Path, reps: int, steps: int, galleries: list[str]) -> dict:
    import torch
    from ecor.towers import clip_towers
    from ecor.model import ECOR
    from ecor.loss import LossConfig, method_loss
    from ecor.rationales import load_dror, dror_file
    from ecor.train import TrainConfig
    path = make_clip_b32(work/'clip-b32') if model == 'b32' else make_clip_l14(work/'clip-l14')
    towers = clip_towers(path, name=f'random-clip-{model}')
    m = ECOR(towers).eval()
    n_img = 16 if model == 'b32' else 4
    ims = photos(n_img)
    res = dict(model=model)
    with torch.no_grad():
        res['image_s'] = timed(lambda: towers.image.features(towers.image.preprocess(ims)), reps) / n_img
        rs = load_dror(dror_file('cifar100'))
        pairs = [dict(category=c, rationale=r) for c in rs.categories[:8] for r in rs.unique_rationales[:16]]   # 128 prompts
        res['prompt_s'] = timed(lambda: m._encode('pair', pairs), reps) / len(pairs)
    feats = towers.image.features(towers.image.preprocess(photos(64))).detach()   # a batch of 64 (ecor-train's default)
    for g in galleries:
        rset = load_dror(dror_file(g))
        labels = torch.randint(len(rset), (64,), generator=torch.Generator().manual_seed(0))
        for method in ('ecor', 'dror'):
            mm = ECOR(towers)
            opt = torch.optim.AdamW([p for p in mm.parameters() if p.requires_grad], lr=1e-3)
            cfg = TrainConfig(LossConfig(method)).loss_config(len(rset.categories))
            gen = torch.Generator().manual_seed(1)
            def step():
                terms = method_loss(mm, mm.image_embeds(features=feats), labels, rset.categories, rset.unique_rationales,
                                    rset.membership, cfg, generator=gen)
                opt.zero_grad(); terms['loss'].backward(); opt.step()
            res[f'step_{method}_{g}_s'] = timed(step, steps)
    return res


# photos of the hub copies (ecor.data.DATASETS; caltech101: the offline train split, 70/30 held out) and the DROR gallery
SIZES = {'cifar10': (50_000, 10_000, 10, 56), 'caltech101': (4_043, 1_741, 100, 459), 'cifar100': (50_000, 10_000, 100, 461),
         'food101': (75_750, 25_250, 101, 399), 'sun397': (19_850, 19_850, 397, 1_700), 'imagenet': (1_281_167, 50_000, 997, 4_246)}
STEP_GALLERY = {'cifar10': 'cifar10', 'caltech101': 'cifar100', 'cifar100': 'cifar100', 'food101': 'cifar100', 'sun397': 'SUN',
                'imagenet': 'imagenet'}   # the measured gallery whose step cost stands for the data set's (same size class)


def estimate(row: dict, epochs: int = 5, batch: int = 64) -> str:
    "Markdown: one-CPU-thread hours of a full run per data set, from the measured unit costs."
    out = [f"| data set | train / test photos | C x R | image features (h) | one full gallery (min) | ECOR, {epochs} epochs (h) | DROR, {epochs} epochs (h) |",
           '|---|---|---|---|---|---|---|']
    for ds, (ntr, nte, C, R) in SIZES.items():
        steps = epochs * -(-ntr // batch)
        g = STEP_GALLERY[ds]
        out.append(f"| {ds} | {ntr:,} / {nte:,} | {C * R:,} | {(ntr + nte) * row['image_s'] / 3600:.1f} | "
                   f"{C * R * row['prompt_s'] / 60:.1f} | {steps * row[f'step_ecor_{g}_s'] / 3600:.1f} | "
                   f"{steps * row[f'step_dror_{g}_s'] / 3600:.1f} |")
    return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default='b32,l14')
    ap.add_argument('--reps', type=int, default=3, help='timed repetitions of each forward pass (after one warm-up)')
    ap.add_argument('--steps', type=int, default=2, help='timed training steps per method and gallery (after one warm-up)')
    ap.add_argument('--galleries', default='cifar10,cifar100,SUN,imagenet')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--work', default=str(ROOT/'runs'/'bench_scale'))
    ap.add_argument('--out', default=str(ROOT/'runs'/'bench_recipe.json'))
    ap.add_argument('--estimate', action='store_true', help='only print the run-time estimates from --out, measured before')
    a = ap.parse_args()
    if a.estimate:
        for r in json.loads(Path(a.out).read_text())['rows']: print(f"\n{r['model']}:\n" + estimate(r))
        return
    import torch
    torch.set_num_threads(a.threads)
    rows = []
    for model in a.models.split(','):
        rows.append(measure(model, Path(a.work), a.reps, a.steps, a.galleries.split(',')))
        print(json.dumps(rows[-1]), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(threads=a.threads, rows=rows), indent=1))
    keys = [k for k in rows[0] if k != 'model']
    print('\n| model | ' + ' | '.join(keys) + ' |\n|---|' + '---|' * len(keys))
    for r in rows: print(f"| {r['model']} | " + ' | '.join(f"{r.get(k, float('nan')):.4g}" for k in keys) + ' |')
    for r in rows: print(f"\n{r['model']}:\n" + estimate(r))


if __name__ == '__main__':
    main()
