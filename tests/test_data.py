"Tests of `ecor.data` as an installed module, on the real offline parquet sets and tiny trees written to tmp_path."
from collections import Counter
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from datasets import ClassLabel, Dataset, Features
import ecor.data as D
import ecor.images as I
from ecor.rationales import RationaleSet, dror_file, load_dror


@pytest.fixture(scope='module')
def caltech(): return D.load_image_dataset('caltech101', 'train')

@pytest.fixture(scope='module')
def cifar_test(): return D.load_image_dataset('cifar10', 'test')


def test_load_from_elsewhere(tmp_path, monkeypatch):
    "The shared parquet sets are found from any cwd (shared_dir falls back to the repo location)."
    monkeypatch.delenv('ECOR_SHARED', raising=False)
    monkeypatch.chdir(tmp_path)
    ds = D.load_image_dataset('cifar10', 'test[:3]')
    assert ds.column_names == ['image', 'label', 'label_name'] and len(ds) == 3
    assert ds[0]['image'].size == (32, 32)


def test_split_errors():
    with pytest.raises(ValueError, match='available'): D.load_image_dataset('caltech101', 'test')
    with pytest.raises(ValueError, match='could not load'): D.load_image_dataset('./no_such_folder_xyz', 'train')


def test_sizes(caltech, cifar_test):
    assert len(caltech) == 5784 and len(D.class_names(caltech)) == 101
    assert len(cifar_test) == 10_000 and set(Counter(cifar_test['label']).values()) == {1000}


def test_match_cifar10(cifar_test):
    m = D.match_classes(D.class_names(cifar_test), load_dror(dror_file('cifar10')), strict=True)
    assert m.counts() == {'exact': 10, 'unmatched': 0} and m.unused == [] and m.merged == {}


def test_match_caltech101(caltech):
    rs = load_dror(dror_file('caltech101'))
    m = D.match_classes(D.class_names(caltech), rs, strict=True)
    assert m.counts() == {'exact': 79, 'normalised': 20, 'alias': 2, 'unmatched': 0}
    assert len(m.mapping) == 101 and set(m.mapping.values()) == set(rs.categories) and len(rs.categories) == 100
    assert m.merged == {'person': ['Faces', 'Faces_easy']}
    assert m.mapping['Motorbikes'] == 'motorbikes' and m.how['Motorbikes'] == 'normalised'
    assert m.mapping['water_lilly'] == 'water lilly'


def test_match_unmatched_reported_and_strict(caltech):
    rs = load_dror(dror_file('caltech101'))
    names = D.class_names(caltech) + ['unicorn']
    m = D.match_classes(names, rs, aliases={'faces': 'nothing', 'faces easy': 'nothing'})
    assert m.unmatched == ['Faces', 'Faces_easy', 'unicorn'] and m.unused == ['person']
    assert len(m.mapping) + len(m.unmatched) == len(names)  # nothing dropped
    with pytest.raises(ValueError, match='unicorn'): D.match_classes(names, rs, strict=True)


def test_match_keys_with_slash():
    "SUN-style keys: the file key `bakery/shop` (display name `bakery shop`) matches a class named as the key or as `bakery_shop`."
    rs = RationaleSet.from_raw({'bakery/shop': ['bread'], 'abbey': ['arches']}, 'sunlike', category_slash=' ')
    m = D.match_classes(['bakery/shop', 'Abbey'], rs, strict=True)
    assert m.mapping == {'bakery/shop': 'bakery shop', 'Abbey': 'abbey'}
    assert m.how == {'bakery/shop': 'exact', 'Abbey': 'normalised'}
    assert D.match_classes(['bakery_shop'], rs, strict=True).mapping == {'bakery_shop': 'bakery shop'}


def _dr_tree(root: Path):
    for i, f in enumerate(['b/x_y/0/1.png', 'b/x_y/1/2.png', 'a/and/or/0/3.png', 'a/plain/0/skip.txt', 'a/plain/0/4.jpeg']):
        p = root/f; p.parent.mkdir(parents=True, exist_ok=True)
        if f.endswith('.txt'): p.write_text('x')
        else: Image.new('RGB', (3, 2 + i)).save(p, format='PNG' if f.endswith('png') else 'JPEG')


def test_doubleright(tmp_path):
    _dr_tree(tmp_path)
    dr = D.load_doubleright(tmp_path)
    rows = [tuple(r.values()) for r in dr.select_columns(['label_name', 'rationale', 'query']).to_list()]
    assert rows == [('a', 'and or or', 0), ('a', 'plain', 0), ('b', 'x y', 0), ('b', 'x y', 1)]
    assert D.class_names(dr) == ['a', 'b'] and dr[3]['image'].size == (3, 3)
    rs = RationaleSet.from_raw({'a': ['plain', 'and/or'], 'b': ['x-y']}, 'toy')
    t = D.encode_labels(dr, D.match_classes(D.class_names(dr), rs, strict=True), rs)
    assert t.category.tolist() == [0, 0, 1, 1]
    assert [rs.unique_rationales[i] for i in t.rationale.tolist()] == ['and or or', 'plain', 'x y', 'x y']


def test_doubleright_errors(tmp_path):
    with pytest.raises(FileNotFoundError): D.load_doubleright(tmp_path/'missing')
    (tmp_path/'cat'/'0').mkdir(parents=True)
    with pytest.raises(ValueError, match='rationale'): D.load_doubleright(tmp_path)


def test_encode_caltech(caltech):
    rs = load_dror(dror_file('caltech101'))
    sub = D.subsample(caltech, 202, seed=0)
    t = D.encode_labels(sub, D.match_classes(D.class_names(caltech), rs), rs)
    assert t.category.shape == (202,) and (t.rationale == -1).all()
    want = [rs.categories.index('person' if n.startswith('Faces') else n.lower().replace('_', ' ')) for n in sub['label_name']]
    assert t.category.tolist() == want


def test_preprocess_matches_transformers():
    from transformers import CLIPImageProcessorPil
    hf = CLIPImageProcessorPil()
    rng = np.random.default_rng(1)
    for h, w in [(97, 131), (401, 224), (224, 225)]:
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        ref = torch.as_tensor(np.asarray(hf(images=[im], return_tensors='np')['pixel_values']))
        x = I.preprocess([im], I.CLIP_PREPROCESS)
        assert x.dtype == torch.float32 and x.shape == (1, 3, 224, 224)
        assert torch.allclose(x, ref, atol=1e-5)


def test_preprocess_by_hand():
    a = np.zeros((3, 3, 3), np.uint8); a[1, 1] = (255, 0, 51)
    x = I.preprocess([Image.fromarray(a)], I.PreprocessConfig(3, (0, 0, 0), (1, 1, 1)))
    assert torch.allclose(x[0, :, 1, 1], torch.tensor([1., 0., .2])) and x.sum().item() == pytest.approx(1.2)
    x = I.preprocess([Image.fromarray(a)], I.PreprocessConfig(3, I.IMAGENET_MEAN, I.IMAGENET_STD))
    assert torch.allclose(x[0, :, 0, 0], -torch.tensor(I.IMAGENET_MEAN) / torch.tensor(I.IMAGENET_STD))


def test_subsample_and_splits(cifar_test, caltech):
    s = D.subsample(cifar_test, 1000, seed=3)
    assert set(Counter(s['label']).values()) == {100}
    assert s['label_name'] == D.subsample(cifar_test, 1000, seed=3)['label_name']
    seen, unseen = D.split_classes(sorted(set(D.match_classes(D.class_names(caltech), load_dror(dror_file('caltech101'))).mapping.values())), seed=0)
    assert len(seen) == len(unseen) == 50 and not set(seen) & set(unseen)
    tr, te = D.holdout(caltech, 0.3, seed=0)
    assert len(tr) + len(te) == 5784 and len(te) == 1741
    assert set(Counter(tr['label'])) == set(Counter(te['label'])) == set(range(101))


def test_holdout_small_classes():
    ds = Dataset.from_dict({'label': [0, 1, 1, 2, 2, 2]}, features=Features({'label': ClassLabel(names=['a', 'b', 'c'])}))
    tr, te = D.holdout(ds, 0.5, seed=0)
    assert sorted(tr['label']) == [0, 1, 2] and sorted(te['label']) == [1, 2, 2]


# --- issue 11: every DROR data set by name ---------------------------------------------------------------------------

MAPPING_COUNTS = {'cifar10': (10, 0, 0, 10), 'caltech101': (79, 20, 2, 100), 'cifar100': (99, 0, 1, 100),
                  'food101': (41, 60, 0, 101), 'sun397': (397, 0, 0, 397), 'imagenet': (444, 63, 493, 997)}


@pytest.mark.parametrize('name', list(MAPPING_COUNTS))
def test_every_label_maps(name):
    "Every shipped label of each DROR data set maps to a key of its DROR file, with the documented step counts."
    e, n, a, keys = MAPPING_COUNTS[name]
    m = D.match_dataset(name)
    assert m.unmatched == [] and m.unused == []
    assert (sum(v == 'exact' for v in m.how.values()), sum(v == 'normalised' for v in m.how.values()),
            sum(v == 'alias' for v in m.how.values())) == (e, n, a)
    assert len(set(m.mapping.values())) == keys == len(load_dror(dror_file(D.DATASETS[name].rationales)))


def test_shipped_in_the_wheel(tmp_path):
    "`pip install` ships the label lists and alias tables: they are in a wheel built from this checkout."
    import subprocess, sys, zipfile
    root = Path(D.__file__).parent.parent
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp_path), str(root)],
                   check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob('ecor-*.whl'))).namelist())
    for ds in D.DATASETS:
        assert {f'ecor/assets/labels/{ds}.txt', f'ecor/assets/aliases/{ds}.json'} <= names, ds


@pytest.mark.parametrize('name,hub_id,split,image_col,label_col', [
    ('cifar100', 'uoft-cs/cifar100', 'test', 'img', 'fine_label'), ('food101', 'ethz/food101', 'validation', 'image', 'label'),
    ('sun397', 'tanganke/sun397', 'test', 'image', 'label'), ('imagenet', 'ILSVRC/imagenet-1k', 'validation', 'image', 'label')])
def test_hub_path(monkeypatch, name, hub_id, split, image_col, label_col):
    "The hub path asks `datasets.load_dataset` for the registered id and split, reads its columns, and maps every label."
    calls, names = [], D.label_list(name)
    def fake(path, split=None, revision=None, **kw):
        calls.append((path, split, revision))
        feats = Features({image_col: D.datasets.Image(), label_col: ClassLabel(names=names), 'other': ClassLabel(names=['x', 'y'])})
        return Dataset.from_dict({image_col: [Image.new('RGB', (4, 4))] * 3, label_col: [0, 1, len(names) - 1], 'other': [1, 1, 1]},
                                 features=feats)
    monkeypatch.setattr(D, 'load_dataset', fake)
    spec = D.DATASETS[name]
    assert (spec.hub_id, spec.test_split) == (hub_id, split)
    ds = D.load_image_dataset(name, f'{split}[:3]')
    assert calls == [(hub_id, f'{split}[:3]', None)]
    assert ds.column_names == ['image', 'label', 'label_name'] and ds['label_name'] == [names[0], names[1], names[-1]]
    m = D.match_dataset(name, D.class_names(ds))
    assert len(m.mapping) == len(names)
    with pytest.raises(ValueError, match='available'): D.load_image_dataset(name, 'nosuchsplit')


def test_hub_renamed_label_is_named(monkeypatch):
    "A hub copy whose names drift from the shipped list fails strictly, naming the class, instead of mis-scoring."
    names = D.label_list('food101'); names[5] = 'beet salad (new)'
    with pytest.raises(ValueError, match=r'beet salad \(new\)'): D.match_dataset('food101', names)


def test_hub_errors_offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(ValueError, match='gated'): D.load_image_dataset('imagenet', 'validation[:1]')
    with pytest.raises(ValueError, match='ethz/food101'): D.load_image_dataset('food101', 'train[:1]')


def test_register_dataset(monkeypatch):
    import dataclasses
    monkeypatch.setitem(D.DATASETS, 'sun397', D.DATASETS['sun397'])
    alt = D.register_dataset(dataclasses.replace(D.DATASETS['sun397'], hub_id='someone/sun397', revision='abc'))
    assert D.dataset_spec('sun397') is alt
    calls = []
    monkeypatch.setattr(D, 'load_dataset', lambda path, split=None, revision=None: calls.append((path, split, revision)) or 1/0)
    with pytest.raises(ValueError, match='someone/sun397'): D.load_image_dataset('sun397', 'test')
    assert calls == [('someone/sun397', 'test', 'abc')]
    with pytest.raises(ValueError, match='must be among'): D.register_dataset(dataclasses.replace(alt, test_split='val'))


def test_cifar10_falls_back_to_the_hub(tmp_path, monkeypatch):
    "Without the offline parquet folder, cifar10 is read from its hub copy (image column `img`), not an error."
    monkeypatch.setenv('ECOR_SHARED', str(tmp_path))        # a shared folder without datasets/
    calls, names = [], D.label_list('cifar10')
    def fake(path, split=None, revision=None, **kw):
        calls.append((path, split))
        return Dataset.from_dict({'img': [Image.new('RGB', (4, 4))], 'label': [3]},
                                 features=Features({'img': D.datasets.Image(), 'label': ClassLabel(names=names)}))
    monkeypatch.setattr(D, 'load_dataset', fake)
    ds = D.load_image_dataset('cifar10', 'test[:1]')
    assert calls == [('uoft-cs/cifar10', 'test[:1]')] and ds['label_name'] == ['cat']
    with pytest.raises(FileNotFoundError, match='offline only'): D.load_image_dataset('caltech101', 'train')
