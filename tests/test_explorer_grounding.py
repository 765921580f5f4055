"Tests of the explorer's grounding view (`ecor.explorer.GroundingView`) without a browser: a tiny random CLIP, real CIFAR-10 photos."
import io
from types import SimpleNamespace
import numpy as np
import pytest
import torch
from PIL import Image
import ecor.explorer as X
from ecor.data import load_rationale_set
from ecor.data import load_image_dataset
from ecor.grounding import GroundConfig, ground, overlay
from ecor.towers import make_tiny_clip


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('grounding_view')
    clip = str(make_tiny_clip(tmp/'tiny_clip'))
    hub = X.ModelHub()
    return SimpleNamespace(clip=clip, hub=hub, towers=hub.towers(clip), runs=tmp/'runs', rset=load_rationale_set('cifar10'),
                           cifar=load_image_dataset('cifar10', 'test'))


def image_passes(towers):
    "Count forward passes of the tiny CLIP's vision transformer; returns (counts, remove)."
    calls = dict(image=0)
    h = towers.image.vision_model.register_forward_hook(lambda *_: calls.__setitem__('image', calls['image'] + 1))
    return calls, h.remove


def pixels(png:bytes) -> np.ndarray: return np.asarray(Image.open(io.BytesIO(png)).convert('RGB'), dtype=np.float32)


def test_click_shows_the_overlay_of_that_explanation(env):
    "A click draws exactly `overlay(photo, ground(...))` of the clicked explanation, with one image pass per photo."
    ex = X.RationaleExplorer(env.clip, index=4, runs_dir=env.runs, hub=env.hub)
    g = ex.grounding[0]
    assert [o for o, _ in g.pick.options] == ex.state.panels[0].scores.sentences and g.pick.value is None
    assert g.image not in g.box.children and g.state is None            # nothing drawn before a click
    calls, remove = image_passes(env.towers)
    try:
        for j in (2, 0, 4):
            g.pick.value = j
            e = ex.state.panels[0].scores.explanations[j]
            assert g.state.explanation == e and g.state.error is None and g.image in g.box.children
            assert str(e) in g.caption.value.replace('&#x27;', "'")
            photo = env.cifar[4]['image'].convert('RGB')
            with torch.no_grad():
                ref = ground(env.hub.model(env.clip), [photo], [[e]], env.rset.categories, env.rset.unique_rationales)[0][0]
            torch.testing.assert_close(torch.nan_to_num(g.state.heatmap, -9.), torch.nan_to_num(ref, -9.), atol=1e-6, rtol=0)
            buf = io.BytesIO(); overlay(photo, ref).save(buf, format='PNG')
            assert np.abs(pixels(bytes(g.image.value)) - pixels(buf.getvalue())).max() <= 1
        assert calls['image'] == 1 + 3          # the view's one pass for photo 4 (then kept), and the three reference passes
    finally: remove()


def test_changes_reset_the_choice(env):
    "A new photo, factorisation or model offers the new explanations and removes the map; errors offer nothing."
    ex = X.RationaleExplorer(env.clip, index=1, runs_dir=env.runs, hub=env.hub)
    g = ex.grounding[0]
    g.pick.value = 1
    assert g.image in g.box.children
    for change in (lambda: setattr(ex.index, 'value', 2), lambda: setattr(ex.factorisation, 'value', 'inverted')):
        change()
        assert g.pick.value is None and g.image not in g.box.children and g.state is None
        assert [o for o, _ in g.pick.options] == ex.state.panels[0].scores.sentences
    ex.panels[0].model.value = str(env.runs/'no_such_clip')
    assert ex.state.panels[0].error and g.pick.options == () and g.image not in g.box.children
    ex.panels[0].model.value = env.clip
    assert len(g.pick.options) == 5


def test_upload_and_second_panel(env):
    "An uploaded landscape photo is grounded in its own pixels (NaN outside the crop); panel B grounds with its model."
    ex = X.RationaleExplorer(env.clip, index=0, runs_dir=env.runs, hub=env.hub, compare=(env.clip, ''))
    big = env.cifar[7]['image'].convert('RGB').resize((96, 64))
    ex.set_image(big, 'wide.png')
    for g in ex.grounding:
        g.pick.value = 0
        assert g.state.error is None and tuple(g.state.heatmap.shape) == (64, 96)
        cols = g.state.heatmap.isnan().all(0)
        assert cols[:10].all() and cols[-10:].all() and not cols[20:76].any()   # the centre crop drops 16 px each side
        assert Image.open(io.BytesIO(bytes(g.image.value))).size == (96 * 4, 64 * 4)


def test_temperature_and_method_are_the_views(env):
    "The view's `GroundConfig` decides the map (here the rationale map)."
    ex = X.RationaleExplorer(env.clip, index=3, runs_dir=env.runs, hub=env.hub)
    g = ex.grounding[0]
    g.config = GroundConfig(method='r')
    g.pick.value = 0
    e, photo = ex.state.panels[0].scores.explanations[0], env.cifar[3]['image'].convert('RGB')
    with torch.no_grad():
        ref = ground(env.hub.model(env.clip), [photo], [[e]], env.rset.categories, env.rset.unique_rationales, GroundConfig(method='r'))[0][0]
    torch.testing.assert_close(g.state.heatmap, ref, atol=1e-6, rtol=0)
    assert 'log P(R | I, x)' in g.caption.value
