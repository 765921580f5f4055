"""Training on several processes with Hugging Face Accelerate (issue 11): `accelerate launch --multi_gpu --num_processes 2
-m ecor.cli train` on this GPU-less machine (two CPU processes joined through gloo; Accelerate 1.15's `--cpu` would start
one) against one process with the same global batch and seed, on a tiny random CLIP and real photos."""
import json, os, socket, subprocess, sys, time
from pathlib import Path
import pytest
import torch
from safetensors.torch import load_file
from ecor.towers import make_tiny_clip
from test_doubleright import write_tree   # the miniature DoubleRight tree of real CIFAR-10 photos (24 training photos)

BIN = Path(sys.executable).parent
REL_TOL = 2e-3   # max |one - two| of the final prompts, relative to how far training moved them (max |epoch2 - epoch0|)


def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def run(cmd: list, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false', OMP_NUM_THREADS='1')
    t0 = time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env)
    return r, time.perf_counter() - t0


def train_args(tiny, root, out, cache, batch):
    return ['train', '--model', tiny, '--data', f'doubleright:{root}', '--n', '0', '--epochs', '3', '--batch_size', str(batch),
            '--lr', '0.01', '--seed', '3', '--output_dir', out, '--cache_dir', cache]


@pytest.fixture(scope='module', params=['tiny-clip', 'default'])
def runs(tmp_path_factory, request):
    "One process with batch 8, and two processes with batch 4 each (global batch 8), same seed, separate caches."
    tmp = tmp_path_factory.mktemp('acc')
    root = write_tree(tmp/'cifar10_dr')
    tiny = make_tiny_clip(tmp/'tiny') if request.param == 'tiny-clip' else 'default'   # the embedded default model
    one, t1 = run([BIN/'ecor-train', *train_args(tiny, root, 'one', 'cache1', 8)[1:]], tmp)
    two, t2 = run([BIN/'accelerate', 'launch', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
                   '--dynamo_backend', 'no', '--multi_gpu', '--main_process_port', free_port(), '-m', 'ecor.cli',
                   *train_args(tiny, root, 'two', 'cache2', 4)], tmp)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    print(f'{request.param}: wall: one process {t1:.1f}s, two processes {t2:.1f}s')
    return tmp, one, two


def test_same_prompts(runs):
    "The final prompts of two processes equal one process's (the DoubleRight step draws nothing at random)."
    tmp, *_ = runs
    a, b = (load_file(tmp/d/'checkpoint-epoch2'/'ecor.safetensors') for d in ('one', 'two'))
    assert a.keys() == b.keys() and a
    init = load_file(tmp/'one'/'checkpoint-epoch0'/'ecor.safetensors')
    moved = max((a[k] - init[k]).abs().max().item() for k in a)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f'max |one - two| = {diff:.3g}; max |epoch2 - epoch0| = {moved:.3g}')
    assert moved > 0.01               # training moved the prompts ...
    assert diff < REL_TOL * moved     # ... and the two runs moved them alike (measured: 1.4e-5 tiny CLIP, 4.6e-4 default)


def test_written_once(runs):
    "Checkpoints, log and printed history once (main process); the feature cache computed and written once."
    tmp, one, two = runs
    for d, r in (('one', one), ('two', two)):
        assert sorted(p.name for p in (tmp/d).iterdir()) == ['checkpoint-epoch0', 'checkpoint-epoch1', 'checkpoint-epoch2', 'log.jsonl']
        log = [json.loads(l) for l in (tmp/d/'log.jsonl').read_text().splitlines()]
        assert [h['epoch'] for h in log] == [0, 1, 2]
        assert [json.loads(l)['epoch'] for l in r.stdout.splitlines() if l.startswith('{')] == [0, 1, 2]
    l1, l2 = ([json.loads(l) for l in (tmp/d/'log.jsonl').read_text().splitlines()] for d in ('one', 'two'))
    assert all(abs(x['loss'] - y['loss']) < 1e-4 for x, y in zip(l1, l2))     # the global batch's mean, not one shard's
    assert [p.suffix for p in (tmp/'cache2').iterdir()] == ['.safetensors']   # one features file, no temporaries
    assert 'recomputing' not in two.stderr
    assert torch.equal(*(load_file(next((tmp/c).glob('*.safetensors')))['features'] for c in ('cache1', 'cache2')))
