"""Fault injection: issue 9's table, one test (at least) per row. Runs in CI with `make test`.

Each test provokes a fault the way a careless user, a crash or a concurrent run would, and checks the outcome the
notebooks document: an error naming the file / flag / tensor, a warning and a recomputation, or a fallback that loses
nothing. Every image and rationale file is generated here. Training runs on a tiny random CLIP and 16 made-up feature
rows; a few tests run real console scripts or child processes (kill -9, concurrent runs, peak memory).
"""
import contextlib, io, json, os, shutil, signal, struct, subprocess, sys, textwrap, time, warnings, zlib
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
import ecor.cli as cli
from ecor.cli import run_command
from ecor.images import ImageDecodeError, load_image, preprocess
from ecor.data import load_image_dataset, subsample
from ecor.evaluate import BenchConfig, run_benchmark
from ecor.model import ECOR
from ecor.loss import LossConfig
from ecor.rationales import RationaleSet, load_rationales
from ecor.towers import clip_towers, make_tiny_clip
from ecor.train import (NonFiniteError, ResumeMismatchError, RunLock, RunLockedError, TrainConfig, cached_features,
                        latest_checkpoint, train)

HERE = Path(__file__).parent
TOY = RationaleSet.from_raw({'tomato': ['red skin', 'a smooth surface'], 'grass': ['green blades'],
                             'sky': ['blue colour', 'a smooth surface'], 'coal': ['black lumps']}, name='toy')


def toy_data():
    "16 feature rows of a tiny CLIP (dim 32) and their labels."
    return torch.randn(16, 32, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 4


def toy_run(tiny, out, epochs=3, resume=False, slow=0.0, **cfg):
    "Train ECOR prompts on the toy data (4 steps per epoch); `slow` seconds of sleep per step."
    if slow:
        import ecor.train as T
        check = T.check_step
        T.check_step = lambda *a: (time.sleep(slow), check(*a))[1]
    towers = clip_towers(tiny)
    torch.manual_seed(0)
    m = ECOR(towers)
    feats, labels = toy_data()
    h = train(m, feats, labels, TOY, TrainConfig(**dict(epochs=epochs, batch_size=4, output_dir=str(out), progress=False) | cfg),
              resume=resume)
    return m, h


def child(code, *args, timeout=300):
    "Run `code` in a fresh Python with the tests folder importable; returns the CompletedProcess."
    pre = f'import sys; sys.path.insert(0, {str(HERE)!r})\n'
    return subprocess.run([sys.executable, '-c', pre + textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def cmd(func, *argv):
    "(exit status, stdout, stderr) of a console command run in-process."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = run_command(func, [str(a) for a in argv], prog='ecor-x')
    return rc, out.getvalue(), err.getvalue()


def errors(err):
    "The lines our handlers print (third-party progress bars filtered out)."
    return [l for l in err.splitlines() if l.startswith('ecor-')]


@pytest.fixture(scope='module')
def tiny(tmp_path_factory): return make_tiny_clip(tmp_path_factory.mktemp('tiny')/'clip')


@pytest.fixture(scope='module')
def reference(tiny, tmp_path_factory):
    "An uninterrupted 3-epoch toy run: (model, its output folder)."
    out = tmp_path_factory.mktemp('reference')/'run'
    m, _ = toy_run(tiny, out)
    return m, out


def same_weights(a, b):
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()): assert torch.allclose(x, y, atol=1e-6), k


# ---------------------------------------------------------------- numerics: --lr inf / NaN rows / --lr 1e6

def test_nan_gradient_stops_before_any_nan_checkpoint(tiny, tmp_path):
    "A NaN mid-run stops training at that step; every checkpoint on disk stays finite and loadable."
    towers = clip_towers(tiny); torch.manual_seed(0); m = ECOR(towers)
    p0 = next(p for p in m.parameters() if p.requires_grad)
    n = []
    p0.register_hook(lambda g: n.append(1) or (g * float('nan') if len(n) >= 6 else g))   # epoch 1, step 1 onwards
    feats, labels = toy_data()
    with pytest.raises(NonFiniteError, match=r'training stopped at epoch 1, step 1: the gradients .* last good checkpoint is .*checkpoint-epoch0'):
        train(m, feats, labels, TOY, TrainConfig(epochs=3, batch_size=4, output_dir=str(tmp_path), progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['checkpoint-epoch0', 'log.jsonl']
    assert all(torch.isfinite(t).all() for t in load_file(tmp_path/'checkpoint-epoch0'/'ecor.safetensors').values())
    assert all(torch.isfinite(p).all() for p in m.parameters())


@pytest.mark.parametrize('lr', ['inf', 'nan', '1e6', '0', '-1'])
def test_cli_refuses_learning_rates_that_cannot_train(lr, monkeypatch):
    monkeypatch.setattr(cli, 'load_towers', lambda *a: pytest.fail('the model loaded before the flags were checked'))
    rc, _, err = cmd(cli.train, '--lr', lr)
    assert rc == 2 and errors(err) == [f'ecor-x: error: --lr {float(lr)}: expected a finite learning rate in (0, 1]'], err


def test_library_refuses_bad_config_and_nan_features(tiny, tmp_path):
    feats, labels = toy_data()
    m = ECOR(clip_towers(tiny))
    for cfg, msg in [(dict(lr=float('inf')), 'TrainConfig.lr=inf'), (dict(lr=1e6), 'TrainConfig.lr=1000000.0'),
                     (dict(epochs=0), 'TrainConfig.epochs=0')]:
        with pytest.raises(ValueError, match=msg.replace('.', r'\.')):
            train(m, feats, labels, TOY, TrainConfig(output_dir=str(tmp_path), **cfg))
    with pytest.raises(ValueError, match=r'LossConfig\.anchors=0'): TrainConfig(LossConfig(anchors=0))
    feats[7, 2] = float('nan')
    with pytest.raises(ValueError, match=r'features: non-finite values in rows \[7\] of 16'):
        train(m, feats, labels, TOY, TrainConfig(output_dir=str(tmp_path)))
    assert not list(tmp_path.iterdir())   # nothing written


def test_explain_refuses_a_nan_checkpoint(tiny, reference, tmp_path, monkeypatch):
    "Before: `airplane because there is metal body: nan`, exit 0. Now: exit 1, one line naming file and tensor."
    ck = tmp_path/'ck'; shutil.copytree(reference[1]/'checkpoint-epoch2', ck)
    state = load_file(ck/'ecor.safetensors'); k = sorted(state)[0]; state[k] = state[k].clone().fill_(float('nan'))
    save_file(state, ck/'ecor.safetensors')
    Image.new('RGB', (32, 32), 'red').save(tmp_path/'red.png')
    rc, out, err = cmd(cli.explain, tmp_path/'red.png', '--model', tiny, '--checkpoint', ck)
    assert rc == 1 and out == ''
    assert errors(err) == [f"ecor-x: error: {ck/'ecor.safetensors'}: non-finite values (NaN or inf) in ['{k}'] (--debug shows the traceback)"]


# ---------------------------------------------------------------- checkpoints: kill -9, truncation, partial files

KILL_CHILD = '''
import builtins, io, os, signal, sys
from test_faults import toy_run
target, out, tiny = sys.argv[1:4]
real_open = builtins.open
class Killed:
    "A file whose first write writes half its data, reaches the disk, and kills the process (kill -9)."
    def __init__(self, f): self.f = f
    def write(self, data):
        self.f.write(data[:len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, k): return getattr(self.f, k)
    def __enter__(self): return self
    def __exit__(self, *a): self.f.close()
def opener(file, mode='r', *a, **k):
    f = real_open(file, mode, *a, **k)
    if any(c in mode for c in 'wxa') and target in os.path.basename(str(file)) and 'epoch1' in str(file): return Killed(f)
    return f
builtins.open = io.open = opener
toy_run(tiny, out)
'''


@pytest.mark.parametrize('target', ['ecor.safetensors', 'ecor_config.json', 'optimizer.safetensors', 'trainer_state.json'])
def test_kill_during_checkpoint_write(target, tiny, reference, tmp_path):
    "kill -9 halfway through writing each file of epoch 1's checkpoint; resume then continues from epoch 0 exactly."
    out = tmp_path/'run'
    r = child(KILL_CHILD, target, out, tiny)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        assert latest_checkpoint(out).name == 'checkpoint-epoch0'
    assert not w, [str(x.message) for x in w]                       # the partial write is invisible, not skipped
    assert json.loads((out/RunLock.name).read_text())['pid'] > 0    # the killed run's lock file is left behind
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        m, h = toy_run(tiny, out, resume=True)
    assert any('stale lock of a run that is gone' in str(x.message) for x in w)
    same_weights(m, reference[0])
    assert [x['epoch'] for x in h] == [0, 1, 2]
    assert sorted(p.name for p in out.iterdir()) == ['checkpoint-epoch0', 'checkpoint-epoch1', 'checkpoint-epoch2', 'log.jsonl']


def test_truncated_newest_checkpoint(tiny, reference, tmp_path):
    "`--resume` and `explain --checkpoint DIR` fall back to the previous checkpoint, saying why; the file itself is refused."
    out = tmp_path/'run'; shutil.copytree(reference[1], out)
    f = out/'checkpoint-epoch2'/'ecor.safetensors'; f.write_bytes(f.read_bytes()[:200])
    Image.new('RGB', (32, 32), 'red').save(tmp_path/'red.png')
    rc, text, err = cmd(cli.explain, tmp_path/'red.png', '--model', tiny, '--checkpoint', out, '--k', '1')
    assert rc == 0 and ' because there is ' in text
    assert [l for l in errors(err) if 'warning' in l] == [f'ecor-x: warning: {out/"checkpoint-epoch2"}: skipped, ecor.safetensors does not match its checksum in trainer_state.json (truncated or changed)']
    rc, _, err = cmd(cli.explain, tmp_path/'red.png', '--model', tiny, '--checkpoint', out/'checkpoint-epoch2')
    assert rc == 1 and errors(err)[-1].startswith(f'ecor-x: error: {f}: not a complete safetensors file, truncated or corrupt')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m, _ = toy_run(tiny, out, resume=True)
    same_weights(m, reference[0])


@pytest.mark.parametrize('how', ['empty', 'partial'])
def test_empty_or_partial_weights_refused(how, tiny, reference, tmp_path):
    "Before: accepted (strict=False), output identical to untrained prompts. Now: an error naming the tensors."
    ck = tmp_path/'ck'; shutil.copytree(reference[1]/'checkpoint-epoch2', ck)
    state = load_file(ck/'ecor.safetensors')
    if how == 'empty': (ck/'ecor.safetensors').write_bytes(b''); msg = 'not a complete safetensors file'
    else: gone = sorted(state)[-1]; save_file({k: v for k, v in state.items() if k != gone}, ck/'ecor.safetensors'); msg = f"missing tensors ['{gone}']"
    with pytest.raises(ValueError, match=msg.replace('[', r'\[')): ECOR.from_pretrained(ck, clip_towers(tiny))


@pytest.mark.parametrize('change,msg', [(dict(loss=LossConfig('coop')), "loss.method='ecor' there, 'coop' now"), (dict(lr=0.01), 'lr=0.002 there, 0.01 now'),
                                        (dict(seed=3), 'seed=0 there, 3 now')])
def test_resume_refuses_another_run(change, msg, tiny, reference, tmp_path):
    out = tmp_path/'run'; shutil.copytree(reference[1], out)
    with pytest.raises(ResumeMismatchError, match=msg): toy_run(tiny, out, epochs=4, resume=True, **change)
    assert len(json.loads((out/'checkpoint-epoch2'/'trainer_state.json').read_text())['history']) == 3   # untouched


def test_cli_resume_with_another_method(tiny, tmp_path):
    "Through ecor-train: a different --method on --resume is exit 1 naming the difference; --force_resume proceeds."
    base = ['--model', tiny, '--n', 40, '--batch_size', 20, '--output_dir', tmp_path/'run', '--cache_dir', tmp_path/'cache']
    assert cmd(cli.train, *base, '--epochs', 1)[0] == 0
    rc, _, err = cmd(cli.train, *base, '--epochs', 2, '--method', 'coop', '--resume')
    assert rc == 1 and "was written by a different run: loss.method='ecor' there, 'coop' now" in errors(err)[-1]
    rc, out, err = cmd(cli.train, *base, '--epochs', 2, '--method', 'coop', '--resume', '--force_resume')
    assert rc == 0 and any('resuming anyway (force_resume)' in l for l in errors(err)), err


# ---------------------------------------------------------------- concurrent runs

CONCURRENT_CHILD = '''
import sys
from test_faults import toy_run
toy_run(sys.argv[2], sys.argv[1], slow=0.3)
'''


def test_two_runs_one_output_dir(tiny, tmp_path):
    "The second run fails at once naming the first (its pid); the first finishes alone, its log not interleaved."
    out = tmp_path/'run'
    a = subprocess.Popen([sys.executable, '-c', f'import sys; sys.path.insert(0, {str(HERE)!r})\n' + CONCURRENT_CHILD, str(out), str(tiny)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if (out/RunLock.name).exists() and (out/RunLock.name).read_text(): break
            assert a.poll() is None, a.communicate()[1][-3000:]
            time.sleep(0.1)
        with pytest.raises(RunLockedError, match=rf'{out} is in use by another run \(pid {a.pid} on'):
            toy_run(tiny, out, epochs=1)
        with RunLock(tmp_path/'other'):   # the CLI: exit 1, one line
            rc, _, err = cmd(cli.train, '--model', tiny, '--n', 20, '--epochs', 1, '--batch_size', 20,
                             '--output_dir', tmp_path/'other', '--cache_dir', tmp_path/'cache')
        assert rc == 1 and 'is in use by another run (pid' in errors(err)[-1], err
    finally: _, err_a = a.communicate(timeout=300)
    assert a.returncode == 0, err_a[-3000:]
    assert [json.loads(l)['epoch'] for l in (out/'log.jsonl').read_text().splitlines()] == [0, 1, 2]
    assert not (out/RunLock.name).exists() and latest_checkpoint(out).name == 'checkpoint-epoch2'


# ---------------------------------------------------------------- feature cache

@pytest.fixture(scope='module')
def photos():
    "8 CIFAR-10 test photos and 8 others, as datasets."
    test = load_image_dataset('cifar10', 'test')
    return subsample(test, 8, seed=0), subsample(test, 8, seed=1)


def test_feature_cache_damage_recomputed(tiny, photos, tmp_path):
    towers = clip_towers(tiny)
    ref = cached_features(towers.image, photos[0], tmp_path, data_key='k', progress=False)
    [f] = list(tmp_path.glob('*.safetensors'))
    damages = {'truncated': lambda: f.write_bytes(f.read_bytes()[:100]),
               'zeros': lambda: save_file({'features': torch.zeros_like(ref)}, f),
               'nan row': lambda: save_file({'features': ref.clone().index_fill_(0, torch.tensor([2]), float('nan'))}, f,
                                            metadata=load_meta(f))}
    def load_meta(p):
        from safetensors import safe_open
        with safe_open(str(p), 'pt') as s: return s.metadata()
    for name, damage in damages.items():
        damage()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            got = cached_features(towers.image, photos[0], tmp_path, data_key='k', progress=False)
        assert torch.allclose(got, ref, atol=1e-6), name
        assert any(str(f) in str(x.message) and 'recomputing' in str(x.message) for x in w), name


def test_feature_cache_key_follows_photos_and_weights(tiny, photos, tmp_path):
    "Before: the key was a label; other photos (or weights) under the same label reused the old features."
    towers = clip_towers(tiny)
    a = cached_features(towers.image, photos[0], tmp_path, data_key='cifar10/test/n=8', progress=False)
    b = cached_features(towers.image, photos[1], tmp_path, data_key='cifar10/test/n=8', progress=False)
    assert not torch.allclose(a, b)
    other = clip_towers(make_tiny_clip(tmp_path/'other', seed=5), name=towers.name)
    c = cached_features(other.image, photos[0], tmp_path, data_key='cifar10/test/n=8', progress=False)
    assert not torch.allclose(a, c)
    assert torch.allclose(c, cached_features(other.image, photos[0], None, progress=False), atol=1e-6)


# ---------------------------------------------------------------- the image zoo

def png(array, bit_depth, colour):
    "A PNG written by hand (PIL cannot write 16-bit RGB): `array` [H, W] or [H, W, C] of uint16/uint8."
    h, w = array.shape[:2]
    rows = array.astype('>u2' if bit_depth == 16 else 'u1').reshape(h, -1)
    raw = b''.join(b'\x00' + r.tobytes() for r in rows)
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, bit_depth, colour, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def png_header(w, h):
    "A PNG that claims w x h 1-bit pixels and holds none: a decompression bomb's header."
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 1, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
    "Every kind of image file a careless user has: {name: (path, expected mean RGB or an error fragment)}."
    d = tmp_path_factory.mktemp('zoo')
    z = {}
    def put(name, expect, write):
        write(d/name); z[name] = (d/name, expect)
    put('grey16.png', (128, 128, 128), lambda p: p.write_bytes(png(np.full((8, 8), 32896, np.uint16), 16, 0)))
    put('rgb16.png', (255, 128, 0), lambda p: p.write_bytes(png(np.stack([np.full((8, 8), v, np.uint16) for v in (65535, 32896, 0)], -1), 16, 2)))
    put('float.tif', (128, 128, 128), lambda p: Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(p))
    put('i16.tif', (64, 64, 64), lambda p: Image.fromarray(np.full((8, 8), 64 * 257, np.uint16)).save(p))
    put('rgba.png', (255, 255, 255), lambda p: Image.new('RGBA', (8, 8), (0, 0, 0, 0)).save(p))
    put('cmyk.jpg', None, lambda p: Image.new('CMYK', (8, 8), (0, 255, 255, 0)).save(p))
    put('grey.png', (77, 77, 77), lambda p: Image.new('L', (8, 8), 77).save(p))
    put('one.png', (9, 9, 9), lambda p: Image.new('RGB', (1, 1), (9, 9, 9)).save(p))
    put('anim.gif', None, lambda p: Image.new('P', (8, 8), 1).save(p, save_all=True, append_images=[Image.new('P', (8, 8), 2)]))
    put('strip.png', None, lambda p: Image.new('RGB', (10_000, 1), (200, 10, 10)).save(p))
    put('strip100k.png', None, lambda p: Image.new('RGB', (100_000, 1), (10, 200, 10)).save(p))
    exif = Image.Exif(); exif[0x0112] = 6
    side = np.zeros((20, 40, 3), np.uint8); side[:, :20] = (255, 0, 0)
    put('sideways.jpg', 'upright', lambda p: Image.fromarray(side).save(p, exif=exif, quality=95))
    put('empty.jpg', 'empty file (0 bytes)', lambda p: p.write_bytes(b''))
    put('text.jpg', 'not an image file PIL can read', lambda p: p.write_text('holiday photos, see attached'))
    put('corrupt.png', '', lambda p: p.write_bytes(png(np.zeros((64, 64), np.uint8), 8, 0)[:40] + os.urandom(200)))
    full = io.BytesIO(); Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, 'PNG')
    put('truncated.png', 'truncated or corrupt', lambda p: p.write_bytes(full.getvalue()[:len(full.getvalue()) // 2]))
    jpg = io.BytesIO(); Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg, 'JPEG')
    put('truncated.jpg', 'truncated or corrupt', lambda p: p.write_bytes(jpg.getvalue()[:len(jpg.getvalue()) // 2]))
    put('bomb.png', 'over the pixel limit', lambda p: p.write_bytes(png_header(12_000, 12_000)))   # 144 M pixels, 57 bytes
    put('bomb2.png', 'over the pixel limit', lambda p: p.write_bytes(png_header(100_000, 100_000)))  # PIL's own limit
    put('neg.tif', 'float image with values in [-1, 1]', lambda p: Image.fromarray(np.array([[-1., 1.]], np.float32)).save(p))
    return z


def test_image_zoo_decoded_or_refused(zoo):
    for name, (path, expect) in zoo.items():
        if isinstance(expect, str) and expect != 'upright':
            with pytest.raises(ImageDecodeError) as e: load_image(path)
            assert str(e.value).startswith(f'{path}: ') and expect in str(e.value), (name, str(e.value))
            continue
        im = load_image(path)
        assert im.mode == 'RGB', name
        if isinstance(expect, tuple):
            assert np.abs(np.asarray(im).reshape(-1, 3).mean(0) - expect).max() <= 1, (name, np.asarray(im).reshape(-1, 3).mean(0))
        if expect == 'upright':
            a = np.asarray(im)
            assert im.size == (20, 40) and a[:15, :, 0].mean() > 200 and a[25:, :, 0].mean() < 50, name
        assert preprocess([im]).shape == (1, 3, 224, 224), name


def test_long_strips_need_little_memory(zoo):
    "Before: 10000x1 took 5.3 GB (resize before crop) and 100000x1 raised MemoryError. Now: a few MB."
    r = child('''
        import resource, sys
        from ecor.images import load_image, preprocess
        ims = [load_image(p) for p in sys.argv[1:]]
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        x = preprocess(ims)
        print(x.shape[0], (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    ''', zoo['strip.png'][0], zoo['strip100k.png'][0])
    assert r.returncode == 0, r.stderr[-3000:]
    n, mb = r.stdout.split()
    assert n == '2' and float(mb) < 100, r.stdout


def test_explain_zoo_reports_each_bad_file(tiny, zoo, monkeypatch):
    "One ecor-explain call over the zoo: every good file explained, every bad one reported, exit 1."
    files = [p for p, _ in zoo.values()]
    bad = [p for p, e in zoo.values() if isinstance(e, str) and e != 'upright']
    rc, out, err = cmd(cli.explain, *files, '--model', tiny, '--k', 2)
    assert rc == 1
    explained = [l for l in out.splitlines() if not l.startswith(' ')]
    assert explained == [str(p) for p in files if p not in bad]
    lines = errors(err)
    for p in bad: assert sum(l.startswith(f'ecor-explain: error: {p}: ') for l in lines) == 1, (p, lines)
    assert lines[-1] == f'ecor-explain: {len(bad)} of {len(files)} image(s) could not be read'
    rc, out, _ = cmd(cli.explain, *files[:3], '--model', tiny, '--k', 1)
    assert rc == 0 and len([l for l in out.splitlines() if not l.startswith(' ')]) == 3


# ---------------------------------------------------------------- rationale files

RATIONALE_FILES = {
    'latin1.json': ('{"café": ["crème"]}'.encode('latin-1'), 'latin1.json: not UTF-8 text (byte 0xe9 at offset 5); save it as UTF-8'),
    'latin1.csv': ('category,rationale\ncafé,crème\n'.encode('latin-1'), 'latin1.csv: not UTF-8 text'),
    'empty.json': (b'{}', 'empty.json: no categories'),
    'header.csv': (b'category,rationale\n', 'header.csv: no categories'),
    'allempty.json': (b'{"cat": [], "dog": []}', "allempty.json: none of its 2 categories ('cat', 'dog') has a rationale"),
    'blank.json': (b'{"cat": ["fur", ""]}', "blank.json: category 'cat': rationale '' is empty after normalisation"),
}


@pytest.mark.parametrize('name', RATIONALE_FILES)
def test_bad_rationale_files(name, tmp_path, monkeypatch):
    data, msg = RATIONALE_FILES[name]
    (tmp_path/name).write_bytes(data)
    with pytest.raises(ValueError) as e: load_rationales(tmp_path/name)
    assert msg in str(e.value)
    monkeypatch.setattr(cli, 'load_towers', lambda *a: pytest.fail('the model loaded before the flags were checked'))
    rc, _, err = cmd(cli.explain, 'x.png', '--rationales', tmp_path/name)
    assert rc == 2 and errors(err) == [f"ecor-x: error: --rationales '{tmp_path/name}': {e.value}"]


def test_bom_and_duplicate_keys(tmp_path):
    (tmp_path/'bom.csv').write_bytes('\ufeffcategory,rationale\ncat,whiskers\n'.encode('utf-8'))
    assert load_rationales(tmp_path/'bom.csv').rationales == {'cat': ['whiskers']}
    (tmp_path/'dup.json').write_bytes(b'{"cat": ["fur"], "dog": ["a tail"], "cat": ["whiskers"]}')
    with pytest.warns(UserWarning, match=r"dup\.json: key 'cat' appears twice; its lists are merged"):
        assert load_rationales(tmp_path/'dup.json').rationales == {'cat': ['fur', 'whiskers'], 'dog': ['a tail']}


# ---------------------------------------------------------------- the command line

USAGE = [(cli.explain, ['x.png', '--k', '-3'], '--k -3: expected an integer > 0'),
         (cli.explain, ['x.png', '--k', '0'], '--k 0: expected an integer > 0'),
         (cli.explain, ['x.png', '--factorisation', 'bayes'], "--factorisation 'bayes'"),
         (cli.explain, ['x.png', '--model', './missing'], "--model './missing': no such folder"),
         (cli.train, ['--data', 'cifar11'], "--data 'cifar11': not a DROR data set"),
         (cli.train, ['--epochs', '0'], '--epochs 0: expected an integer > 0'),
         (cli.train, ['--anchors', '-1'], '--anchors -1: expected an integer >= 0'),
         (cli.train, ['--dror_positives', 'some'], "--dror_positives 'some'"),
         (cli.evaluate, ['--settings', 'seen,bogus'], "'bogus' is not one of seen, cross-dataset, unseen"),
         (cli.evaluate, ['--methods', 'zero-shot,ecor,nope'], "'nope' is not one of"),
         (cli.demo, ['--epochs', '0'], '--epochs 0')]


@pytest.mark.parametrize('func,argv,msg', USAGE, ids=[' '.join(a) for _, a, _ in USAGE])
def test_usage_errors_before_the_model_loads(func, argv, msg, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, 'load_towers', lambda *a: pytest.fail('the model loaded before the flags were checked'))
    monkeypatch.chdir(tmp_path)
    rc, out, err = cmd(func, *argv)
    assert rc == 2 and out == '' and len(err.splitlines()) == 1 and msg in err, err
    assert not list(tmp_path.iterdir())   # nothing written (ecor-evaluate used to leave an empty output_dir behind)


def test_console_scripts_exit_status_and_debug(tiny, tmp_path):
    "Real console scripts: usage error -> 2 and one line; runtime error -> 1 and one line; --debug -> the traceback."
    bindir = Path(sys.executable).parent
    r = subprocess.run([bindir/'ecor-explain', 'x.png', '--k', '0'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == 'ecor-explain: error: --k 0: expected an integer > 0\n'
    (tmp_path/'ck').mkdir(); (tmp_path/'ck'/'ecor.safetensors').write_bytes(b''); (tmp_path/'ck'/'ecor_config.json').write_text('{}')
    r = subprocess.run([bindir/'ecor-explain', 'x.png', '--model', tiny, '--checkpoint', tmp_path/'ck'], capture_output=True, text=True)
    assert r.returncode == 1 and errors(r.stderr) == [f"ecor-explain: error: {tmp_path/'ck'/'ecor_config.json'}: expected an object with 'config' and 'towers' (--debug shows the traceback)"]
    assert 'Traceback' not in r.stderr
    r = subprocess.run([bindir/'ecor-explain', 'x.png', '--model', tiny, '--checkpoint', tmp_path/'ck', '--debug'], capture_output=True, text=True)
    assert r.returncode == 1 and 'Traceback (most recent call last)' in r.stderr


def test_evaluate_keeps_finished_rows(tiny, tmp_path):
    "A benchmark that fails half-way keeps every row it finished in results.csv."
    import pandas as pd
    cfg = BenchConfig(settings=('seen', 'bogus'), methods=('zero-shot', 'descriptors'), n_train=20, n_test=20,
                      output_dir=str(tmp_path/'bench'), cache_dir=str(tmp_path/'cache'), progress=False)
    with pytest.raises(ValueError, match="setting 'bogus'"): run_benchmark(clip_towers(tiny), cfg)
    df = pd.read_csv(tmp_path/'bench'/'results.csv')
    assert list(df.method) == ['zero-shot', 'descriptors'] and list(df.setting) == ['seen', 'seen']
