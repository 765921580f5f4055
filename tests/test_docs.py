"""The offline documentation site (tools/docs.py), opened in headless Chromium.

Two sites are built into temporary folders: the real one from nbs/ without execution (`--no-exec`: every page, link,
docs entry and formula of the real notebooks), and a tiny fixture repository with execution (hidden cells, tst_flags,
a matplotlib plot, nbdev's show_doc entries, failures). Each is served on 127.0.0.1 and every page is opened in Chromium driven by Playwright:
every page loads with a title and the sidebar, every local link resolves (files and #anchors), MathML is laid out by
the browser (non-zero boxes, a fraction stacked), no `$$` is left, plots load, and no request leaves 127.0.0.1.
"""
import functools, html, http.server, importlib.util, json, re, subprocess, sys, tempfile, threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse
from urllib.request import Request, urlopen
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']

def _load_builder():
    spec = importlib.util.spec_from_file_location('ecor_docs_builder', ROOT/'tools'/'docs.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod

docs = _load_builder()

# ---------------------------------------------------------------------------------------------------------------
# A tiny nbdev repository: settings.ini, a library module, and notebooks that exercise the builder

def _nb(*cells):
    "Notebook JSON from (cell type, source) pairs."
    return json.dumps({'cells': [{'cell_type': t, 'metadata': {}, 'source': s,
                                  **({'outputs': [], 'execution_count': None} if t == 'code' else {})} for t, s in cells],
                       'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
                       'nbformat': 4, 'nbformat_minor': 5}, indent=1)

SETTINGS = """[DEFAULT]
repo = tiny
user = tiny
lib_name = tinylib
lib_path = tinylib
nbs_path = nbs
title = Tiny
description = A tiny site to test the builder
tst_flags = notest slow
"""

CORE_PY = '''
__all__ = ['add', 'Counter']
def add(a:int,    # the first number
        b:int=2,  # the second number
       ) -> int:  # their sum
    "Add two numbers."
    return a + b

class Counter:
    "Counts things."
    def __init__(self, start:int=0): # where counting starts
        self.n = start
    def bump(self,
             by:int=1, # how much to add
            ) -> int:  # the new count
        "Add `by` and return the count."
        self.n += by
        return self.n
'''

def make_repo(root:Path, failing:bool=False) -> Path:
    "Write the tiny repository under `root`; with `failing`, just an index and a notebook whose third cell raises."
    (root/'nbs').mkdir(parents=True)
    (root/'tinylib').mkdir()
    (root/'settings.ini').write_text(SETTINGS)
    (root/'tinylib'/'__init__.py').write_text('')
    (root/'tinylib'/'core.py').write_text(CORE_PY)
    if failing:
        (root/'nbs'/'index.ipynb').write_text(_nb(('markdown', '# Tiny\n\nSee [the failure](02_fails.ipynb).')))
        (root/'nbs'/'02_fails.ipynb').write_text(_nb(
            ('markdown', '# Fails\n\nThis notebook raises.'),
            ('code', 'x = 1'),
            ('code', 'x / 0'),
            ('code', 'print("AFTER_FAILURE")')))
        return root
    (root/'nbs'/'index.ipynb').write_text(_nb(
        ('markdown', '# Tiny\n\n> A tiny site\n\nSee [the core](01_core.ipynb) and `add`; '
                     'Pythagoras: $a^2 + b^2 = c^2$, and a price of \\$5 stays text.'),
        ('code', 'print("INDEX_OUTPUT")')))
    (root/'nbs'/'01_core.ipynb').write_text(_nb(
        ('code', '#| default_exp core'),
        ('markdown', '# Core things\n\n> Adding and counting\n\n## Adding\n\nA fraction on its own line:\n\n'
                     '$$\\frac{a}{b} = \\sum_{i=1}^{n} \\mathcal{L}_i$$\n\nand `$HOME` in code is not maths.'),
        ('code', '#| export\ndef add(a:int,    # the first number\n        b:int=2,  # the second number\n'
                 '       ) -> int:  # their sum\n    "Add two numbers."\n    return a + b'),
        ('code', 'from tinylib.core import add\nassert add(1) == 3\nprint("SHOWN_OUTPUT", add(1, 1))'),
        ('code', '#| hide\nprint("HIDDEN_MARKER")'),
        ('code', '#| echo: false\nprint("ECHO" + "_OUTPUT")  # ECHO_SOURCE'),
        ('code', '#| slow\nprint("SLOW" + "_RAN")'),
        ('markdown', '## Counting\n\nSee `Counter.bump`.'),
        ('code', '#| export\nclass Counter:\n    "Counts things."\n    def __init__(self, start:int=0): # where counting starts\n'
                 '        self.n = start\n    def bump(self,\n             by:int=1, # how much to add\n            ) -> int:  # the new count\n'
                 '        "Add `by` and return the count."\n        self.n += by\n        return self.n'),
        ('code', 'import matplotlib.pyplot as plt\nplt.figure(figsize=(3, 2)); plt.plot([0, 1, 4, 9]); plt.title("squares");'),
        ('code', '#| hide\nimport nbdev; nbdev.nbdev_export()')))
    return root

# ---------------------------------------------------------------------------------------------------------------
# Serving a folder and opening it in Chromium

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.fixture(scope='module')
def browser():
    "Headless Debian Chromium driven by Playwright, with a fresh profile; every request it makes is recorded."
    if not CHROMIUM.exists():
        pytest.fail(f'{CHROMIUM} is missing: the docs test needs Debian\'s Chromium. Install it with '
                    '`apt-get install chromium chromium-driver` (no Playwright browser download is used).')
    try: from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('Playwright for Python is missing: `pip install playwright` (its wheel ships the driver; do not run '
                    '`playwright install`, the test launches /usr/bin/chromium).')
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), headless=True,
                                                   args=CHROMIUM_FLAGS, viewport={'width': 1280, 'height': 900})
        ctx.requests = []
        ctx.on('request', lambda req: ctx.requests.append(req.url))
        yield ctx
        ctx.close()

@pytest.fixture
def serve():
    "serve(folder) -> base URL of an HTTP server on 127.0.0.1 (a free port) for that folder."
    servers = []
    def start(folder):
        srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f'http://127.0.0.1:{srv.server_address[1]}/'
    yield start
    for s in servers: s.shutdown(); s.server_close()

_PAGE_JS = """() => {
  const math = [...document.querySelectorAll('math')].map(m => {
    const r = m.getBoundingClientRect();
    return {w: r.width, h: r.height, ns: m.namespaceURI, display: getComputedStyle(m).display,
            block: m.getAttribute('display') === 'block'};
  });
  const fracs = [...document.querySelectorAll('mfrac')].map(f => {
    const [num, den] = [...f.children].map(c => c.getBoundingClientRect());
    return num && den ? num.bottom <= den.top + 1 : false;
  });
  const prose = document.querySelector('main').cloneNode(true);
  prose.querySelectorAll('pre, code, math').forEach(e => e.remove());
  return {
    title: document.title,
    sidebar: [...document.querySelectorAll('nav.sidebar > ol > li > a')].map(a => a.getAttribute('href')),
    active: [...document.querySelectorAll('nav.sidebar a.active')].map(a => a.getAttribute('href')),
    links: [...document.querySelectorAll('[href], [src]')].map(e => [e.tagName, e.getAttribute('href') ?? e.getAttribute('src'),
                                                                    e.href || e.src]),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    math, fracs, mathErrors: document.querySelectorAll('.math-error').length,
    proseText: prose.textContent,
    imgs: [...document.querySelectorAll('main img')].map(i => ({src: i.getAttribute('src'), w: i.naturalWidth,
                                                                complete: i.complete})),
    html: document.documentElement.outerHTML,
  };
}"""

def check_site(ctx, base:str, pages:list[str]) -> dict:
    "Open every page; assert it loads, has a title and the sidebar, its local links resolve and its maths is laid out."
    ctx.requests.clear()
    page, seen, status = ctx.new_page(), {}, {}
    for name in pages:
        resp = page.goto(base + name)
        assert resp is not None and resp.status == 200, f'{name}: HTTP {resp and resp.status}'
        info = page.evaluate(_PAGE_JS)
        assert info['title'].strip(), f'{name}: no <title>'
        assert info['sidebar'] == pages, f'{name}: sidebar {info["sidebar"]} != notebook order {pages}'
        assert info['active'] == [name], f'{name}: sidebar marks {info["active"]} as the current page'
        for m in info['math']:
            assert m['ns'] == 'http://www.w3.org/1998/Math/MathML', f'{name}: <math> not parsed as MathML'
            assert 'math' in m['display'], f'{name}: Chromium did not lay <math> out as MathML (display {m["display"]})'
            assert m['w'] > 0 and m['h'] > 0, f'{name}: a formula has an empty box {m}'
        assert all(info['fracs']), f'{name}: a fraction is not stacked (numerator above denominator)'
        assert info['mathErrors'] == 0, f'{name}: {info["mathErrors"]} formula(s) could not be converted'
        assert '$$' not in info['proseText'], f'{name}: unconverted $$ maths left in the text'
        for img in info['imgs']:
            assert img['complete'] and img['w'] > 0, f'{name}: image {img["src"]} did not load'
        seen[name] = info
    # every local link: the file answers 200, and a #fragment names an element of the target page
    for name, info in seen.items():
        for tag, raw, absolute in info['links']:
            url = absolute or urljoin(base + name, raw)
            if urlparse(url).scheme in ('data', 'mailto', 'javascript'): continue
            if not url.startswith(base):
                assert tag == 'A', f'{name}: <{tag.lower()}> loads {raw} from outside the site'
                continue
            target, frag = urldefrag(url)
            path = target[len(base):] or 'index.html'
            if path not in status:
                try:
                    with urlopen(Request(target, method='HEAD')) as r: status[path] = r.status
                except Exception as e: status[path] = getattr(e, 'code', str(e))
            assert status[path] == 200, f'{name}: link {raw} -> {path} answers {status[path]}'
            if frag:
                ids = seen[path]['ids'] if path in seen else []
                assert frag in ids, f'{name}: link {raw}: no element with id {frag!r} on {path}'
    page.close()
    outside = [u for u in ctx.requests if urlparse(u).scheme not in ('data', 'about') and not u.startswith(base)]
    assert not outside, f'requests left the site: {outside[:5]}'
    assert any(u.endswith('.css') for u in ctx.requests), 'the stylesheet was never requested'
    return seen

def expected_pages(nbs:Path) -> list[str]:
    return [docs.page_name(p) for p in docs.list_notebooks(nbs)]

# ---------------------------------------------------------------------------------------------------------------
# The tests

def test_tex_to_mathml():
    "Maths converts to MathML with letters Chromium can draw; what cannot be converted is reported, not dropped."
    m = docs.tex_to_mathml(r'\mathcal L + \mathcal{R} = \arg\max_c \text{a < b} + \mathbb{R} + \mathfrak{C}', display=True)
    assert m.startswith('<math display="block">') and 'mathvariant' not in m
    assert {'\u2112', '\u211b', '\u211d', '\u212d'} <= set(html.unescape(m))    # script L, R; double-struck R; fraktur C
    assert '&lt;' in m and '>arg<' in m
    for bad in (r'\notacommand x', r'a & b'):
        with pytest.raises(ValueError): docs.tex_to_mathml(bad, display=False)
    # nbconvert's markdown parser finds the maths: not in code, not an escaped dollar; failures are collected
    problems = []
    out = docs.exporter(problems).markdown2html({}, '`$HOME` costs \\$5; $x$ and\n\n```\n$$not maths$$\n```\n$$y$$ $\\nope$')
    assert out.count('<math') == 2 and '<code>$HOME</code>' in out and '$$not maths$$' in out and 'costs $5' in out
    assert len(problems) == 1 and 'nope' in problems[0] and 'class="math-error"' in out

def _show_doc_names(nb:Path) -> list[str]:
    "The symbols nbdev documents in notebook `nb`: the `show_doc` cells its `add_show_docs` processor inserts."
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs
    proc = NBProcessor(nb=read_nb(nb), procs=[add_show_docs])
    proc.process()
    return [c.source[len('show_doc('):-1] for c in proc.nb.cells if getattr(c, 'has_sd', False)]

def test_real_site(browser, serve, tmp_path):
    "The site of nbs/ (no execution): every page, link, docs entry and formula of the real notebooks."
    out = tmp_path/'site'
    res = docs.build(ROOT, out, execute=False, n_workers=2)
    assert not res['problems']
    nbs = docs.settings(ROOT).nbs_path
    pages = expected_pages(nbs)
    assert pages[0] == 'index.html' and sorted(p.name for p in out.glob('*.html')) == sorted(pages)
    seen = check_site(browser, serve(out), pages)
    assert sum(len(i['math']) for i in seen.values()) > 20, 'the notebooks have maths; too few formulas rendered'
    n_docs = 0
    for nb in docs.list_notebooks(nbs):
        info = seen[docs.page_name(nb)]
        for nm in _show_doc_names(nb):     # every function and class an exported cell defines (`@patch`: `Cls.meth`)
            assert {docs.slugify(nm), docs.slugify(nm.split('.')[-1])} & set(info['ids']), f'{nb.name}: no docs entry for {nm}'
            n_docs += 1
        for src in re.findall(r'<div class="input_area">(.*?)</div>\s*</div>', info['html'], re.S):
            assert not re.search(r'^\s*(<[^>]+>)*#\|', src, re.M), f'{nb.name}: a directive line is shown'
    assert n_docs > 50, f'only {n_docs} docs entries'
    links = {raw for i in seen.values() for _, raw, _ in i['links']}
    assert any(re.match(r'^\w+\.html#\w', l) for l in links), 'backticked symbols must link to their docs entries'
    assert not any(l.startswith(('https://ecor.github.io', 'http://ecor.github.io')) for l in links), 'links must stay on the site'

def test_fixture_site_executed(browser, serve, tmp_path):
    "An executed build: hidden cells hidden, flagged cells skipped, docs entries, a plot that loads, links across pages."
    root = make_repo(tmp_path/'repo')
    out = tmp_path/'site'
    (out).mkdir()
    (out/'README.md').write_text('kept')
    res = docs.build(root, out, execute=True, log=lambda *a: None)
    assert not res['problems']
    assert (out/'README.md').read_text() == 'kept', 'the build must keep docs/README.md'
    pages = expected_pages(root/'nbs')
    assert pages == ['index.html', 'core.html']
    seen = check_site(browser, serve(out), pages)
    core, index = seen['core.html'], seen['index.html']
    assert core['title'].startswith('Core things') and index['title'] == 'Tiny'
    assert 'HIDDEN_MARKER' not in core['html'] and 'nbdev_export' not in core['html']     # #| hide: source and output
    assert 'ECHO_SOURCE' not in core['html'] and 'ECHO_OUTPUT' in core['html']            # #| echo: false
    assert 'SLOW_RAN' not in core['html'] and 'SLOW' in core['html']                      # #| slow: shown, not run
    assert 'SHOWN_OUTPUT 2' in core['html'] and 'INDEX_OUTPUT' in index['html']
    assert 'See <a href="core.html">the core</a>' in index['html']                      # the title cell's other text stays
    assert '#|' not in core['html'] and 'default_exp' not in core['html']
    # docs entries (nbdev's show_doc): heading, signature with each parameter's docments comment, docstring
    assert {'add', 'counter', 'adding', 'counting'} <= set(core['ids'])
    for s in ('the first number', 'the second number', 'their sum', 'Add two numbers.', 'where counting starts',
              'Counts things.'):
        assert s in core['html'], f'docs entry lacks {s!r}'
    assert 'return a + b' not in core['html'], 'nbdev shows the docs of an #| export cell, not its source'
    # maths: inline on the index, a stacked fraction and a script L on the core page; \$ stays a dollar
    assert len(index['math']) == 1 and 'price of $5' in index['proseText']
    assert core['fracs'] == [True] and any(m['block'] for m in core['math']) and '\u2112' in core['html']
    assert '$HOME' in core['html']
    # the plot: an image the browser loads
    assert len(core['imgs']) == 1 and core['imgs'][0]['w'] > 0

def test_failing_notebook(browser, serve, tmp_path):
    "A cell that raises fails the build (exit 1, naming notebook and cell); --keep-going marks it on the page."
    root = make_repo(tmp_path/'repo', failing=True)
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'docs.py'), '--root', str(root), '--out', str(tmp_path/'a')],
                       capture_output=True, text=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert 'nbs/02_fails.ipynb cell 3: ZeroDivisionError' in p.stderr
    assert not (tmp_path/'a'/'index.html').exists(), 'a failed build must not write a site'
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'docs.py'), '--root', str(root), '--out', str(tmp_path/'b'),
                        '--keep-going'], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    seen = check_site(browser, serve(tmp_path/'b'), ['index.html', 'fails.html'])
    page = seen['fails.html']['html']
    assert 'class="banner"' in page and 'cell 3: ZeroDivisionError' in page
    assert page.count('ZeroDivisionError</span>') + page.count('ZeroDivisionError:') >= 1 and 'output_error' in page
    assert page.count('Traceback') == 1, 'the traceback is shown once'
    outputs = ''.join(re.findall(r'<div class="output">(.*?)</div>', page, re.S))
    assert 'AFTER_FAILURE' in page and 'AFTER_FAILURE' not in outputs   # shown, but it did not run
