"Tests of `ecor.explorer` without a browser: a tiny random CLIP, real CIFAR-10 photos, the widgets driven from Python."
import datetime, html, io, json, re
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from PIL import Image
import ecor.explorer as X
from ecor.hub import load_towers
from ecor.model import load_model
from ecor.data import load_rationale_set
from ecor.data import load_image_dataset
from ecor.model import ECOR, explain
from ecor.towers import make_tiny_clip

FACTS = ('ecor', 'inverted', 'independent')


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    "A tiny CLIP, two 'trained' checkpoints of perturbed prompts under runs/train, the CIFAR-10 test split."
    tmp = tmp_path_factory.mktemp('explorer')
    clip = str(make_tiny_clip(tmp/'tiny_clip'))
    hub = X.ModelHub(cache_dir=tmp)
    towers = hub.towers(clip)
    runs = tmp/'runs'
    for epoch in (1, 2):
        m = ECOR(towers)
        with torch.no_grad():
            torch.manual_seed(epoch)
            for p in m.prompts.parameters(): p.add_(0.5 * torch.randn_like(p))
        ck = m.save_pretrained(runs/'train'/f'checkpoint-epoch{epoch}')
        (ck/'trainer_state.json').write_text(json.dumps(dict(epoch=epoch)))
    return SimpleNamespace(tmp=tmp, clip=clip, hub=hub, towers=towers, runs=runs, rset=load_rationale_set('cifar10'),
                           cifar=load_image_dataset('cifar10', 'test'))


def hook_counts(towers):
    "Count forward passes of a tiny CLIP's text and image transformers; returns (counts, remove)."
    calls = dict(text=0, image=0)
    def bump(k): return lambda *_: calls.__setitem__(k, calls[k] + 1)
    hs = [towers.text.text_model.encoder.register_forward_hook(bump('text')),
          towers.image.vision_model.register_forward_hook(bump('image'))]
    return calls, lambda: [h.remove() for h in hs]


@pytest.fixture
def counts(env):
    "Forward passes of the towers every model of `env.hub` shares."
    calls, remove = hook_counts(env.towers)
    yield calls
    remove()


_DIRECT = {}

def direct_model(env, checkpoint=''):
    "The model of a choice, loaded here independently of the explorer's hub (once per test module)."
    key = (env.clip, str(checkpoint))
    if key not in _DIRECT: _DIRECT[key] = load_model(env.towers, str(checkpoint or ''))
    return _DIRECT[key]


def sentences(model, image, rset, f='ecor', k=5):
    return [str(e) for e in explain(model, [image], rset.categories, rset.unique_rationales, k, f)[0]]


def shown(panel):
    "The sentences a panel's HTML shows, unescaped."
    return [html.unescape(s) for s in re.findall(r'<li>(.*?)</li>', panel.sentences.value)]


def explorer(env, **kw):
    return X.RationaleExplorer(env.clip, **dict(runs_dir=env.runs, hub=env.hub) | kw)


def test_scorer_matches_ecor(env):
    "Scorer.score = ECOR.forward + explain, under every factorisation, on real photos."
    model = env.hub.model(env.clip)
    sc = X.Scorer(model, env.rset)
    photos = [env.cifar[i]['image'] for i in (0, 1, 2, 3)]
    C, R = len(env.rset.categories), len(env.rset.unique_rationales)
    for f in FACTS:
        with torch.no_grad():   # (with gradients on, ECOR re-encodes the gallery instead of using its cache)
            direct = model(env.rset.categories, env.rset.unique_rationales, pixel_values=env.towers.image.preprocess(photos),
                           factorisation=f)
        for i, im in enumerate(photos):
            s = sc.score(im, f, k=5, k_r=R, k_c=C)
            torch.testing.assert_close(s.log_joint, direct.log_joint[i], atol=1e-5, rtol=0)
            torch.testing.assert_close(s.log_p_c, direct.log_p_c[i], atol=1e-5, rtol=0)
            torch.testing.assert_close(s.log_p_r, direct.log_p_r[i], atol=1e-5, rtol=0)
            assert s.sentences == sentences(model, im, env.rset, f)
            pc = direct.log_p_c[i].exp()
            assert [c for c, _ in s.top_categories] == [env.rset.categories[j] for j in pc.argsort(descending=True)]
            np.testing.assert_allclose([p for _, p in s.top_categories], pc.sort(descending=True).values, atol=1e-6)
            # the heatmap is the conditional P(c|R,I) = P(c,R|I) / P(R|I); with all categories each row sums to 1
            hm = np.array(s.heatmap['values'])
            assert hm.shape == (R, C)
            np.testing.assert_allclose(hm.sum(1), 1, atol=1e-5)
            r0, c0 = env.rset.unique_rationales.index(s.heatmap['rationales'][0]), env.rset.categories.index(s.heatmap['categories'][0])
            assert abs(hm[0, 0] - float((direct.log_joint[i, c0, r0] - direct.log_p_r[i, r0]).exp())) < 1e-5


def test_displayed_values_follow_index_and_toggle(env):
    "The HTML and numbers on screen are explain()'s and the Scorer's, for a new index and for every factorisation."
    ex = explorer(env, index=0)
    a, model = ex.panels[0], direct_model(env)
    assert shown(a) == sentences(model, env.cifar[0]['image'], env.rset)
    assert 'cifar10/test #0' in ex.caption.value and env.cifar[0]['label_name'] in ex.caption.value
    assert ex.index.max == len(env.cifar) - 1
    first = shown(a)
    ex.index.value = 42
    assert shown(a) == sentences(model, env.cifar[42]['image'], env.rset) != first
    assert 'cifar10/test #42' in ex.caption.value
    bars = {}
    for f in FACTS:
        ex.factorisation.value = f
        st = ex.state.panels[0].scores
        assert f'data-factorisation="{f}"' in a.sentences.value
        assert shown(a) == st.sentences == sentences(model, env.cifar[42]['image'], env.rset, f)
        # the category table shows P(c|I) of this factorisation, the heatmap its P(c|R,I)
        with torch.no_grad():
            direct = model(env.rset.categories, env.rset.unique_rationales,
                           pixel_values=env.towers.image.preprocess([env.cifar[42]['image']]), factorisation=f)
        pc = direct.log_p_c[0].exp()
        table = re.findall(r'<tr><td>([^<]*)</td><td[^>]*>([0-9.]+)</td>', a.categories.value)
        assert [c for c, _ in table] == [env.rset.categories[j] for j in pc.argsort(descending=True)]
        np.testing.assert_allclose([float(p) for _, p in table], pc.sort(descending=True).values, atol=6e-4)
        cells = [float(x) for x in re.findall(r'data-p="([0-9.]+)"', a.heatmap.value)]
        np.testing.assert_allclose(cells, np.ravel(st.heatmap['values']), atol=1e-5)
        assert Image.open(io.BytesIO(bytes(a.bars.value))).format == 'PNG'
        bars[f] = bytes(a.bars.value)
    # ecor and independent share P(R|I) = softmax of the rationale logits; inverted's P(R|I) is a mixture
    assert bars['ecor'] == bars['independent'] != bars['inverted']


def test_towers_run_only_when_needed(env, tmp_path):
    "Toggling runs neither tower; a new photo runs the image tower once, for both panels; a photo seen before, nothing."
    hub = X.ModelHub(cache_dir=tmp_path)          # fresh models, towers and text cache: nothing cached yet
    calls, remove = hook_counts(hub.towers(env.clip))
    try:
        ex = X.RationaleExplorer(env.clip, index=3, runs_dir=env.runs, hub=hub)
        assert calls['text'] > 0 and calls['image'] == 1   # the gallery, then photo 3
        calls.update(text=0, image=0)
        for f in ('inverted', 'independent', 'ecor', 'inverted'): ex.factorisation.value = f
        assert calls == dict(text=0, image=0)
        ex.index.value = 4; ex.index.value = 5
        assert calls == dict(text=0, image=2)
        ex.index.value = 3
        assert calls == dict(text=0, image=2)
        # a second panel, a checkpoint on the same towers: its prompts are encoded once; photo 3 is not embedded again
        ex.compare.value = True
        assert calls['text'] > 0 and calls['image'] == 2
        assert ex.state.panels[1].error is None and 'checkpoint-epoch2' in ex.state.panels[1].checkpoint
        calls.update(text=0, image=0)
        for f in FACTS: ex.factorisation.value = f
        ex.index.value = 4                        # seen before: nothing runs
        assert calls == dict(text=0, image=0)
        ex.index.value = 6                        # new: one image pass serves both panels
        assert calls == dict(text=0, image=1)
        (tmp_path/'pets.json').write_text(json.dumps({'cat': ['whiskers'], 'dog': ['a wet nose']}))
        ex.rationale_path.value = str(tmp_path/'pets.json')  # another gallery: the text tower runs, the photo is not re-embedded
        assert calls['text'] > 0 and calls['image'] == 1
        calls.update(text=0)
        ex.rationale_path.value = ''              # back to cifar10: everything cached
        ex.rationales.value = 'cifar10_level2'    # the same level-1 gallery as cifar10: cached too
        assert calls == dict(text=0, image=1)
    finally: remove()


def test_compare_two_checkpoints(env):
    "Panel B holds a checkpoint (a run directory means its last epoch) and shows that model's explanations."
    ex = explorer(env, index=9, compare=(env.clip, str(env.runs/'train')))
    assert ex.compare.value and ex.panels[1].box.layout.display is None
    a, b = ex.state.panels
    last = direct_model(env, env.runs/'train'/'checkpoint-epoch2')
    photo = env.cifar[9]['image']
    assert b.error is None and shown(ex.panels[1]) == sentences(last, photo, env.rset)
    assert shown(ex.panels[0]) == sentences(direct_model(env), photo, env.rset) != shown(ex.panels[1])
    assert 'checkpoint-epoch' not in ex.panels[0].status.value and 'train' in ex.panels[1].status.value
    # the checkpoints under runs/ are offered in both menus, epoch order
    assert [Path(v).name for _, v in ex.panels[0].checkpoint.options] == ['', 'checkpoint-epoch1', 'checkpoint-epoch2']
    assert [Path(v).name for _, v in ex.panels[1].checkpoint.options][1:] == ['checkpoint-epoch1', 'checkpoint-epoch2', 'train']
    ex.panels[0].checkpoint.value = str(env.runs/'train'/'checkpoint-epoch1')
    ep1 = direct_model(env, env.runs/'train'/'checkpoint-epoch1')
    assert shown(ex.panels[0]) == sentences(ep1, photo, env.rset) != shown(ex.panels[1])
    ex.compare.value = False
    assert len(ex.state.panels) == 1 and ex.panels[1].box.layout.display == 'none'


def test_upload(env, counts):
    "An uploaded PNG is explained like the data set photo with the same pixels (and not embedded again)."
    ex = explorer(env, index=5)
    before = shown(ex.panels[0])
    ex.index.value = 6
    n = counts['image']
    buf = io.BytesIO(); env.cifar[5]['image'].save(buf, format='PNG')
    ex.upload.value = (dict(name='my photo.png', type='image/png', size=len(buf.getvalue()), content=memoryview(buf.getvalue()),
                            last_modified=datetime.datetime.now()),)
    assert 'uploaded: my photo.png' in ex.caption.value and 'true:' not in ex.caption.value
    assert shown(ex.panels[0]) == before and counts['image'] == n
    ex.set_image(Image.open(io.BytesIO(buf.getvalue())).resize((64, 48)), 'resized')
    assert 'uploaded: resized' in ex.caption.value and counts['image'] == n + 1
    ex.upload.value = (dict(name='notes.txt', type='text/plain', size=5, content=memoryview(b'hello'),
                            last_modified=datetime.datetime.now()),)
    assert 'notes.txt' in ex.caption.value and 'not an image' in ex.state.panels[0].error
    ex.index.value = 5                            # the slider goes back to the data set
    assert shown(ex.panels[0]) == before and 'cifar10/test #5' in ex.caption.value


def test_errors_are_shown_not_raised(env, tmp_path):
    "Bad choices end up in the panel, the explorer keeps working."
    ex = explorer(env, index=0)
    a = ex.panels[0]
    a.model.value = str(tmp_path/'no_such_clip')
    assert 'no_such_clip' in ex.state.panels[0].error and 'ecor-error' in a.status.value and a.sentences.value == ''
    a.model.value = env.clip
    assert ex.state.panels[0].error is None and len(shown(a)) == 5
    ex.rationale_path.value = str(tmp_path/'missing.json')
    assert 'missing.json' in ex.state.panels[0].error
    ex.rationale_path.value = ''
    # prompts trained on other towers: from_pretrained refuses, the panel says why
    other = str(make_tiny_clip(tmp_path/'other_clip', seed=1))
    ck = ECOR(load_towers(other)).save_pretrained(tmp_path/'other_ck')
    a.checkpoint.options = [*a.checkpoint.options, ('other', str(ck))]
    a.checkpoint.value = str(ck)
    assert 'trained on towers' in ex.state.panels[0].error


def test_rationale_set_from_file(env, tmp_path):
    "A typed rationale file replaces the DROR set; only its categories and rationales appear."
    f = tmp_path/'pets.json'
    f.write_text(json.dumps({'cat': ['whiskers', 'fur'], 'dog': ['a wet nose', 'fur']}))
    ex = explorer(env, index=3)
    ex.rationale_path.value = str(f)
    assert ex.state.panels[0].error is None and ex.rationale_spec == str(f)
    st = ex.state.panels[0].scores
    assert {e.category for e in st.explanations} <= {'cat', 'dog'} and len(st.explanations) == 5
    assert st.heatmap['categories'] and set(st.heatmap['categories']) == {'cat', 'dog'}
    assert len(st.heatmap['rationales']) == 3
    ex.rationale_path.value = ''; ex.rationales.value = 'cifar10_level2'
    assert ex.state.panels[0].error is None and len(ex.state.panels[0].scores.categories) == 10


def test_dataset_switch_and_rescan(env, tmp_path):
    ex = explorer(env, index=9999, runs_dir=tmp_path)
    assert [v for _, v in ex.panels[0].checkpoint.options] == ['']
    ex.dataset.value = 'cifar10/train'
    assert ex.index.max == 49_999 and ex.index.value == 9999 and 'cifar10/train #9999' in ex.caption.value
    assert env.cifar.features['label'].names[0] in ex.caption.value or 'true:' in ex.caption.value
    new = ECOR(env.towers).save_pretrained(tmp_path/'later'/'checkpoint-epoch1')
    assert str(new) not in [v for _, v in ex.panels[0].checkpoint.options]
    ex.rescan.click()
    assert all(str(new) in [v for _, v in p.checkpoint.options] for p in ex.panels)


def test_find_checkpoints(tmp_path):
    for e in (10, 2, 1): (tmp_path/'r'/f'checkpoint-epoch{e}').mkdir(parents=True); (tmp_path/'r'/f'checkpoint-epoch{e}'/'ecor.safetensors').touch()
    assert [Path(c).name for c in X.find_checkpoints(tmp_path)] == ['checkpoint-epoch1', 'checkpoint-epoch2', 'checkpoint-epoch10']
    assert X.find_checkpoints(tmp_path/'nothing') == []
