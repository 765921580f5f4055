"""The DoubleRight protocol end to end (issue 11): a miniature benchmark tree of real CIFAR-10 photos, `ecor-train` and
`ecor-evaluate --data doubleright:DIR` on a tiny random CLIP, each photo trained and scored with its own rationale."""
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
import ecor.cli as cli
from ecor.data import load_image_dataset, load_doubleright, select_classes
from ecor.rationales import dror_file, load_dror
from ecor.towers import make_tiny_clip

CATEGORIES, RATIONALES = ('airplane', 'cat', 'dog', 'ship'), 2
SIDES = {'train': 3, 'test': 1}   # photos per (category, rationale) on each side of DROR's released split


def write_tree(root: Path, extra_rationale: str | None = None) -> Path:
    """DROR's layout <root>/{train,test}/<category>/<rationale>/0/<photo>.png: 4 categories x their first 2 DROR
    rationales, 3 + 1 distinct real test photos each."""
    raw = json.loads(dror_file('cifar10').read_text())
    test = load_image_dataset('cifar10', 'test')
    for c in CATEGORIES:
        photos, k = select_classes(test, [c]).select(range(RATIONALES * sum(SIDES.values())))['image'], 0
        rats = raw[c][:RATIONALES] if extra_rationale is None else [raw[c][0], extra_rationale]
        for side, per in SIDES.items():
            for j, r in enumerate(rats):
                d = root/side/c/r.replace('/', '__')/'0'; d.mkdir(parents=True, exist_ok=True)
                for i in range(per): photos[k].save(d/f'{j}_{i}.png'); k += 1
    return root


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dr')
    return tmp, write_tree(tmp/'DoubleRight'/'cifar10_dr'), make_tiny_clip(tmp/'tiny')


def test_train_uses_each_photos_rationale(setup, monkeypatch):
    "ecor-train --data doubleright:DIR hands the loss each photo's own rationale (its folder), not the category's set."
    tmp, root, tiny = setup
    seen = {}
    def fake_train(model, feats, labels, rset, cfg, true_rationales=None, **kw):
        seen.update(labels=labels, rset=rset, true=true_rationales); return []
    monkeypatch.setattr(cli, 'train_prompts', fake_train)
    cli.train(model=str(tiny), data=f'doubleright:{root}', n=0, epochs=1, output_dir=str(tmp/'fake'), cache_dir=str(tmp/'cache'))
    ds = load_doubleright(root/'train')                      # DROR's train tree only
    rset = seen['rset']
    assert rset.name == 'cifar10_text' and len(seen['true']) == len(ds) == len(CATEGORIES) * RATIONALES * SIDES['train']
    assert [rset.unique_rationales[i] for i in seen['true'].tolist()] == ds['rationale']
    assert [rset.categories[i] for i in seen['labels'].tolist()] == ds['label_name']
    assert len(set(ds['rationale'])) == len(CATEGORIES) * RATIONALES


def _run(cmd, *args, cwd):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false')
    return subprocess.run([str(Path(sys.executable).parent/cmd), *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_train_and_evaluate_commands(setup):
    tmp, root, tiny = setup
    r = _run('ecor-train', '--model', str(tiny), '--data', f'doubleright:{root}', '--n', '0', '--epochs', '1', '--batch_size', '8',
             '--output_dir', 'run', '--cache_dir', 'cache', cwd=tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp/'run'/'checkpoint-epoch0'/'ecor.safetensors').is_file()
    r = _run('ecor-evaluate', '--model', str(tiny), '--data', f'doubleright:{root}', '--methods', 'zero-shot,dror,ecor',
             '--epochs', '1', '--batch_size', '8', '--output_dir', 'bench', '--cache_dir', 'cache', cwd=tmp)
    assert r.returncode == 0, r.stderr[-2000:]
    df = pd.read_csv(tmp/'bench'/'results.csv')
    assert df.setting.tolist() == ['doubleright'] * 3 and df.method.tolist() == ['zero-shot', 'dror', 'ecor']
    assert (df['rationale photos'] == df['n_test']).all() and (df['n_test'] == 8).all()   # DROR's test tree: 4 x 2 x 1
    assert ((df['DROR RR'] + df['DROR RW'] + df['DROR WR'] + df['DROR WW']) - 1).abs().max() < 1e-9
    ck = tmp/'bench'/'checkpoints'/'doubleright-ecor-seed0'
    assert json.loads((ck/'checkpoint-epoch0'/'trainer_state.json').read_text())['epoch'] == 0


def test_rationales_flag_and_errors(setup):
    "Another folder name needs --rationales; a photo filed under a rationale the file lacks is an error naming it."
    tmp, root, tiny = setup
    other = write_tree(tmp/'bench_photos', extra_rationale='a bright purple moon')/'train'
    r = _run('ecor-train', '--model', str(tiny), '--data', f'doubleright:{other}', '--epochs', '1', cwd=tmp)
    assert r.returncode == 2 and 'pass --rationales' in r.stderr
    r = _run('ecor-train', '--model', str(tiny), '--data', f'doubleright:{other}', '--rationales', 'cifar10', '--epochs', '1',
             '--output_dir', 'run2', '--cache_dir', 'cache', cwd=tmp)
    assert r.returncode == 1 and 'a bright purple moon' in r.stderr and 'cifar10_text' in r.stderr, r.stderr[-2000:]
