"""The explorer's grounding view in a real JupyterLab: click an explanation, see its overlay (headless Chromium, Playwright).

Same setup as `test_explorer_browser.py` (its JupyterLab fixture and helpers): a notebook builds the explorer on a tiny
random CLIP and a real CIFAR-10 test photo; the test runs it, checks that no overlay image is on the page before a
click, clicks the second explanation's radio button under panel A, waits for the overlay image, and compares its
pixels with `ecor.grounding.overlay` of `ecor.grounding.ground`'s map computed here. Screenshots go to
$ECOR_SCREENSHOT_DIR (default: the test's tmp dir).
"""
import base64, io, json, os, time
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from test_explorer_browser import (CHROMIUM_ARGS, TIMEOUT_MS, _accept_kernel_dialog, _chromium, _imports, _nothing_ran,
                                   _run_all_cells, _wait_for_server, lab)  # noqa: F401 (lab is a fixture)

INDEX = 3


def _notebook(clip:str) -> dict:
    cell = lambda i, kind, src: dict(cell_type=kind, id=f'c{i}', metadata={}, source=src,
                                     **(dict(execution_count=None, outputs=[]) if kind == 'code' else {}))
    return dict(nbformat=4, nbformat_minor=5,
                metadata=dict(kernelspec=dict(display_name='Python 3 (ipykernel)', language='python', name='python3')),
                cells=[cell(0, 'code', 'from ecor.explorer import RationaleExplorer'),
                       cell(1, 'code', f"ex = RationaleExplorer({clip!r}, rationales='cifar10', dataset='cifar10/test', index={INDEX}, runs_dir='runs')\nex")])


def _wait_for_panel(page, timeout_ms:int):
    "Wait until panel A shows its sentences, running the cells again if a kernel dialog or a lost click stopped them."
    t0 = last_run = time.time()
    while page.locator('.ecor-panel-a .ecor-sentences li').count() == 0:
        if _accept_kernel_dialog(page) or (time.time() - last_run > 10 and _nothing_ran(page)):
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout_ms)
            _run_all_cells(page)
            last_run = time.time()
        if time.time() - t0 > timeout_ms / 1000: raise TimeoutError(f'the explorer did not render in {timeout_ms / 1000:.0f}s')
        page.wait_for_timeout(300)


@pytest.mark.browser
@pytest.mark.flaky(reruns=1)  # a JupyterLab start under heavy load can stall once; a second failure is real
def test_clicked_explanation_shows_its_overlay(lab, tmp_path):
    chromium, sync_playwright = _chromium(), _imports()
    import torch
    from ecor.hub import load_towers
    from ecor.model import load_model
    from ecor.data import load_rationale_set
    from ecor.data import load_image_dataset
    from ecor.grounding import ground, overlay
    from ecor.model import explain
    from ecor.towers import make_tiny_clip
    shots = Path(os.environ.get('ECOR_SCREENSHOT_DIR') or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    clip = str(make_tiny_clip(tmp_path/'tiny_clip'))
    (lab['root']/'grounding.ipynb').write_text(json.dumps(_notebook(clip), indent=1))
    model, rset = load_model(load_towers(clip)), load_rationale_set('cifar10')
    photo = load_image_dataset('cifar10', 'test')[INDEX]['image'].convert('RGB')
    with torch.no_grad():
        exps = explain(model, [photo], rset.categories, rset.unique_rationales, 5)[0]
        expect = overlay(photo, ground(model, [photo], [[exps[1]]], rset.categories, rset.unique_rationales)[0][0])

    _wait_for_server(lab)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=dict(width=1400, height=2600))
        try:
            page.goto(f"{lab['url']}/lab/tree/grounding.ipynb?token={lab['token']}")
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=TIMEOUT_MS)
            page.wait_for_timeout(500)
            _accept_kernel_dialog(page)
            page.keyboard.press('Control+b')
            _run_all_cells(page)
            _wait_for_panel(page, TIMEOUT_MS)
            view = page.locator('.ecor-panel-a .ecor-grounding')
            assert view.locator('img').count() == 0                          # no map (and no empty image) before a click
            labels = view.locator('.widget-radio-box label').all_inner_texts()
            assert labels == [str(e) for e in exps], labels                   # the panel's explanations, in order
            view.locator('.widget-radio-box label').nth(1).click()
            page.wait_for_selector('.ecor-panel-a .ecor-grounding img', timeout=60_000)
            page.wait_for_function("() => { const i = document.querySelector('.ecor-panel-a .ecor-grounding img');"
                                   " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
            b64 = page.eval_on_selector('.ecor-panel-a .ecor-grounding img', """async img => {
                const buf = await (await fetch(img.src)).arrayBuffer();
                let s = ''; for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
                return btoa(s); }""")
            shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGB'), dtype=np.float32)
            assert shown.shape == (224, 224, 3), shown.shape
            assert np.abs(shown - np.asarray(expect, dtype=np.float32)).max() <= 1
            assert str(exps[1]) in view.locator('.ecor-grounding-caption').inner_text()
            page.locator('.ecor-explorer').screenshot(path=str(shots/'explorer_grounding.png'))
        except Exception:
            page.screenshot(path=str(shots/'explorer_grounding_failure.png'))
            print(lab['log'].read_text()[-4000:])
            raise
        finally: browser.close()
