"""Build the offline documentation site of this nbdev repository from its notebooks: `python tools/docs.py [--out docs]`.

No Quarto, no JavaScript, no CDN. One HTML page per notebook in `nbs/` (index.ipynb first, as index.html; the others in
sorted order, named like nbdev names them: `05_loss.ipynb` -> `loss.html`), a sidebar in that order on every page, and
a stylesheet. Markdown is rendered with markdown-it-py, `$...$` / `$$...$$` become MathML at build time (latex2mathml),
so the browser lays the maths out natively. Code cells: `#| hide` (and `#| include: false`) cells are left out,
`#| echo: false` hides the source, `#| output: false` the output, directive lines are stripped from shown source;
`#| export` cells are shown, then every function and class they define is documented from the imported library
object: signature, docstring, and a table of parameters with their docments comments. By default every notebook is
executed first (execnb's CaptureShell, cwd = nbs/, one subprocess per notebook, cells flagged with the settings'
`tst_flags` skipped as `nbdev_test` skips them), so outputs and plots appear; `--no-exec` builds without running.

A problem (a cell that raises, a symbol that cannot be imported, maths that cannot be converted) stops the build with
exit status 1 and says where it is; `--keep-going` writes the site anyway with each problem marked on its page.
`nbdev_docs` (Quarto) keeps working where Quarto exists: this builder reads the notebooks and writes only under `--out`.
"""
from __future__ import annotations
import argparse, ast, base64, configparser, html, importlib, inspect, json, os, re, shutil, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent/'docs_assets'
CSS_NAME = 'docs.css'
IMG_DIR = 'img'

class BuildError(Exception):
    "The site could not be built; the message says which notebook, cell and why."

# ---------------------------------------------------------------------------------------------------------------
# Settings and the notebook list

def read_settings(root:Path) -> dict:
    "The `[DEFAULT]` section of `root/settings.ini` as a dict (title, description, lib_name, nbs_path, tst_flags...)."
    p = Path(root)/'settings.ini'
    if not p.exists(): raise BuildError(f'{p}: not found (the repository root must hold settings.ini)')
    cp = configparser.ConfigParser(delimiters=['='], interpolation=None)
    cp.read(p, encoding='utf-8')
    return dict(cp['DEFAULT'])

_re_num = re.compile(r'^\d+[a-zA-Z]?_')

def page_name(nb:Path) -> str:
    "The HTML file of notebook `nb`, named as nbdev names doc pages: the number prefix dropped."
    return 'index.html' if nb.stem == 'index' else _re_num.sub('', nb.stem) + '.html'

def list_notebooks(nbs:Path) -> list[Path]:
    "Notebooks of `nbs` (top level) in sidebar order: index.ipynb first, then sorted by name; `_` and `.` files skipped."
    nbs = sorted(p for p in Path(nbs).glob('*.ipynb') if not p.name.startswith(('_', '.')))
    return sorted(nbs, key=lambda p: (p.stem != 'index', p.name))

# ---------------------------------------------------------------------------------------------------------------
# Cells and directives (nbdev's own parser, so `#| hide`, `#|hide`, `#| echo: false` all mean what nbdev means)

def read_cells(nb_path:Path) -> list[dict]:
    "Cells of a notebook, each with `type`, `source`, `directives` (nbdev's parse) and its stored `outputs`."
    from execnb.nbio import read_nb
    from nbdev.process import extract_directives, first_code_ln
    nb = read_nb(nb_path)
    cells = []
    for i, c in enumerate(nb.cells):
        src = c.source or ''
        dirs = extract_directives(c, remove=False) if c.cell_type == 'code' else {}
        shown = src
        if c.cell_type == 'code':
            lines = src.splitlines(True)
            k = first_code_ln(lines)
            shown = ''.join(l for l in (lines[k:] if k is not None else [])
                            if not re.search(r'#\|\s*hide_line\s*$', l)).strip('\n')
        cells.append(dict(idx=i, type=c.cell_type, source=src, shown=shown, directives=dirs,
                          outputs=[dict(o) for o in c.get('outputs', [])]))
    return cells

def _flag(dirs:dict, name:str) -> str|None:
    "Value of a Quarto-style directive `#| name: value` (lower-case), else None."
    v = dirs.get(name + ':')
    return v[0].lower() if v else None

def is_hidden(cell:dict) -> bool:
    "A code cell left out of the page entirely: `#| hide` or `#| include: false`."
    d = cell['directives']
    return 'hide' in d or _flag(d, 'include') == 'false'

def skip_exec(cell:dict, flags:set) -> bool:
    "Whether execution skips a cell, exactly as `nbdev_test` does."
    if cell['type'] != 'code': return True
    if 'nbdev_export' + '(' in cell['source']: return True
    if _flag(cell['directives'], 'eval') == 'false': return True
    return bool(flags & set(cell['directives']))

# ---------------------------------------------------------------------------------------------------------------
# Execution: one subprocess per notebook (`python tools/docs.py --exec-worker NB JSON`), outputs back as JSON

def _worker(nb_path:str, json_out:str, root:str, flags:list[str], timeout:int|None):
    "Run in a fresh interpreter: execute `nb_path` with execnb, cwd = its folder, and write outputs per cell to JSON."
    os.environ.setdefault('IN_TEST', '1')
    nb_path = Path(nb_path).resolve()
    sys.path.insert(0, str(root))
    from execnb.shell import CaptureShell
    cells = read_cells(nb_path)
    shell = CaptureShell(nb_path)
    res = dict(outputs={}, error=None)
    os.chdir(nb_path.parent)
    t0 = time.time()
    for c in cells:
        if skip_exec(c, set(flags)): continue
        shell._cell_idx = c['idx'] + 1
        outs = shell.run(c['source'], timeout=timeout)
        res['outputs'][str(c['idx'])] = list(outs)
        if shell.exc is not None:
            res['error'] = dict(cell=c['idx'], ename=type(shell.exc).__name__, evalue=str(shell.exc),
                                traceback=shell.prettytb(fname=nb_path))
            break
    res['seconds'] = time.time() - t0
    Path(json_out).write_text(json.dumps(res, default=str))

def execute_notebook(nb:Path, root:Path, flags:set, timeout:int|None=None) -> dict:
    "Execute `nb` in a subprocess; {'outputs': {cell index: [outputs]}, 'error': None or {'cell', 'traceback', ...}}."
    with tempfile.TemporaryDirectory() as td:
        out = Path(td)/'out.json'
        cmd = [sys.executable, str(Path(__file__).resolve()), '--exec-worker', str(nb), str(out), '--root', str(root),
               '--flags', ' '.join(sorted(flags))] + (['--timeout', str(timeout)] if timeout else [])
        p = subprocess.run(cmd, capture_output=True, text=True)   # CaptureShell selects the inline plot backend
        if p.returncode != 0 or not out.exists():
            tail = (p.stdout + p.stderr)[-4000:]
            return dict(outputs={}, error=dict(cell=None, ename='WorkerFailed', evalue=f'exit status {p.returncode}',
                                               traceback=tail), seconds=0.0)
        res = json.loads(out.read_text())
    res['outputs'] = {int(k): v for k, v in res['outputs'].items()}
    return res

# ---------------------------------------------------------------------------------------------------------------
# Maths: TeX -> MathML at build time

_MV = {  # MathML Core ignores mathvariant (except "normal"), so letters become Unicode mathematical alphanumerics
    'bold': (0x1D400, 0x1D41A, 0x1D7CE), 'italic': (0x1D434, 0x1D44E, None), 'bold-italic': (0x1D468, 0x1D482, None),
    'script': (0x1D49C, 0x1D4B6, None), 'bold-script': (0x1D4D0, 0x1D4EA, None), 'fraktur': (0x1D504, 0x1D51E, None),
    'double-struck': (0x1D538, 0x1D552, 0x1D7D8), 'bold-fraktur': (0x1D56C, 0x1D586, None),
    'sans-serif': (0x1D5A0, 0x1D5BA, 0x1D7E2), 'bold-sans-serif': (0x1D5D4, 0x1D5EE, 0x1D7EC),
    'monospace': (0x1D670, 0x1D68A, 0x1D7F6)}
_MV_HOLES = {'italic': {'h': 0x210E}, 'script': dict(B=0x212C, E=0x2130, F=0x2131, H=0x210B, I=0x2110, L=0x2112,
             M=0x2133, R=0x211B, e=0x212F, g=0x210A, o=0x2134), 'fraktur': dict(C=0x212D, H=0x210C, I=0x2111, R=0x211C,
             Z=0x2128), 'double-struck': dict(C=0x2102, H=0x210D, N=0x2115, P=0x2119, Q=0x211A, R=0x211D, Z=0x2124)}

def _mv_char(ch:str, variant:str) -> str:
    if variant not in _MV: return ch
    if ch in _MV_HOLES.get(variant, {}): return chr(_MV_HOLES[variant][ch])
    up, lo, dig = _MV[variant]
    if 'A' <= ch <= 'Z': return chr(up + ord(ch) - 65)
    if 'a' <= ch <= 'z': return chr(lo + ord(ch) - 97)
    if '0' <= ch <= '9' and dig: return chr(dig + ord(ch) - 48)
    return ch

def _fix_mathvariant(mathml:str) -> str:
    "Replace `mathvariant` (not laid out by Chromium's MathML Core) by Unicode letters, or a font style on mtext."
    def mi(m):
        variant, text = m.group(2), html.unescape(m.group(3))
        if variant == 'normal': return m.group(0)
        return f'<{m.group(1)}>' + html.escape(''.join(_mv_char(ch, variant) for ch in text)) + f'</{m.group(1)}>'
    mathml = re.sub(r'<(mi|mn)\s+mathvariant="([\w-]+)">([^<]*)</\1>', mi, mathml)
    styles = {'monospace': 'font-family:monospace', 'bold': 'font-weight:bold', 'italic': 'font-style:italic',
              'sans-serif': 'font-family:sans-serif'}
    return re.sub(r'<mtext\s+mathvariant="([\w-]+)">', lambda m: f'<mtext style="{styles.get(m.group(1), "")}">', mathml)

_TEXT_CMDS = r'\\(?:text|textrm|textit|textbf|texttt|textsf|mbox|mathrm|operatorname)\s*\{'

def _protect_text(tex:str) -> str:
    "latex2mathml copies `<`, `>`, `&` of \\text{...} raw into XML: mark them there, turn the rest into \\lt / \\gt."
    out, i = [], 0
    for m in re.finditer(_TEXT_CMDS, tex):
        if m.start() < i: continue
        out.append(tex[i:m.end()].replace('<', r'\lt ').replace('>', r'\gt '))
        depth, j = 1, m.end()
        while j < len(tex) and depth:
            depth += {'{': 1, '}': -1}.get(tex[j], 0) if (j == 0 or tex[j-1] != '\\') else 0
            j += 1
        out.append(tex[m.end():j].replace('<', '\ue010').replace('>', '\ue011').replace(r'\&', '\ue012'))
        i = j
    out.append(tex[i:].replace('<', r'\lt ').replace('>', r'\gt '))
    return ''.join(out)

_TEX_FIXES = [  # what latex2mathml lacks, in terms it knows
    (r'\\(begin|end)\{aligned\}', r'\\\1{align*}'),
    (r'\\(arg)(?![A-Za-z])', r'\\operatorname{\1}')]

def tex_to_mathml(tex:str, display:bool) -> str:
    "MathML of a TeX formula; raises ValueError when latex2mathml cannot convert it (unknown command, bad syntax)."
    from latex2mathml.converter import convert
    src = tex.strip()
    for pat, rep in _TEX_FIXES: src = re.sub(pat, rep, src)
    try: out = convert(_protect_text(src), display='block' if display else 'inline')
    except Exception as e: raise ValueError(f'{type(e).__name__}: {e}') from None
    out = out.replace('\ue010', '&lt;').replace('\ue011', '&gt;').replace('\ue012', '&amp;')
    try: tree = ET.fromstring(out)
    except ET.ParseError as e: raise ValueError(f'not well-formed MathML ({e}); an `&` outside an environment?') from None
    bad = [t.text for t in tree.iter() if t.tag.endswith(('}mi', '}mo')) and t.text and re.match(r'\\[A-Za-z]+', t.text)]
    if bad: raise ValueError(f'unknown command {bad[0]}')
    return _fix_mathvariant(out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', '', 1))

# the spans of a markdown source that must not be read as maths: fenced code blocks and code spans
_re_fence = re.compile(r'^( {0,3})(`{3,}|~{3,})[^\n]*\n.*?(?:^\1?\2[ \t]*$|\Z)', re.M | re.S)
_re_codespan = re.compile(r'(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)', re.S)
_re_display = re.compile(r'\$\$(.+?)\$\$', re.S)
_re_inline = re.compile(r'(?<![\\$\w])\$(?![\s$])((?:\\.|[^$\\\n]|\n(?!\s*\n))+?)(?<![\s\\])\$(?![$\d])')
_PH = '\ue000{}\ue001'
_re_ph = re.compile('\ue000(\\d+)\ue001')

def extract_math(src:str) -> tuple[str, list]:
    "Markdown `src` with every formula outside code replaced by a placeholder; the formulas as (tex, display) pairs."
    maths = []
    def keep(m): maths.append((m.group(1), m.re is _re_display)); return _PH.format(len(maths) - 1)
    def text_part(s):
        s = _re_display.sub(keep, s)
        return _re_inline.sub(keep, s)
    def no_spans(s):
        out, i = [], 0
        for m in _re_codespan.finditer(s): out += [text_part(s[i:m.start()]), m.group(0)]; i = m.end()
        return ''.join(out + [text_part(s[i:])])
    out, i = [], 0
    for m in _re_fence.finditer(src): out += [no_spans(src[i:m.start()]), m.group(0)]; i = m.end()
    return ''.join(out + [no_spans(src[i:])]), maths

# ---------------------------------------------------------------------------------------------------------------
# Markdown and code -> HTML

def highlight(code:str, lang:str='python') -> str:
    "HTML of `code` highlighted by Pygments (class names styled by the site's CSS), or just escaped."
    try:
        from pygments import highlight as hl
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        return hl(code, get_lexer_by_name(lang or 'text'), HtmlFormatter(nowrap=True)).rstrip('\n')
    except Exception: return html.escape(code)

def slugify(s:str) -> str:
    "An HTML id from heading text, as nbdev/Quarto make them (lower case, words joined by '-')."
    s = re.sub(r'<[^>]+>', '', html.unescape(s)).strip().lower()
    return re.sub(r'[^\w\- ]', '', s).strip().replace(' ', '-') or 'section'

@dataclass(eq=False)
class Page:
    "One notebook's page while it is built."
    nb: Path                    # the notebook
    name: str                   # its HTML file name
    title: str                  # first `# ` heading of the notebook, else its name without number
    module: str|None = None     # its `#| default_exp` module
    ids: set = field(default_factory=set)        # ids already used on the page
    toc: list = field(default_factory=list)      # (text, id) of its H2 headings
    problems: list = field(default_factory=list) # what went wrong here (marked on the page with --keep-going)
    docs: dict = field(default_factory=dict)     # cell index -> [(name, object or import error, id, {method: id})]
    images: int = 0             # images written for it

    def new_id(self, want:str) -> str:
        "A unique id on this page, `want` if free."
        i, cand = 1, want
        while cand in self.ids: cand, i = f'{want}-{i}', i + 1
        self.ids.add(cand)
        return cand

class Renderer:
    "Markdown -> HTML with maths as MathML, headings with ids, links to notebooks and to documented symbols."
    def __init__(self, pages:dict, symbols:dict):
        from markdown_it import MarkdownIt
        self.pages, self.symbols = pages, symbols    # notebook stem -> Page; symbol name -> (page name, id)
        # notebooks' markdown may hold HTML; docstrings and docments comments are text (`<root>/<image>` is not a tag)
        self.md, self.md_text = [MarkdownIt('commonmark', {'html': h, 'highlight': self._hl}).enable(['table', 'strikethrough'])
                                 for h in (True, False)]
        for md in (self.md, self.md_text): md.add_render_rule('code_inline', lambda renderer, *a: self._code_inline(*a))
        self.page = None

    def _hl(self, code, lang, attrs):
        return f'<pre><code class="language-{html.escape(lang or "text")}">{highlight(code, lang or "text")}</code></pre>'

    def link_for(self, name:str) -> str|None:
        "href of the page or doc entry that `name` (a notebook or an exported symbol, as written in backticks) names."
        n = name.strip().removesuffix('()')
        n = n[:-6] if n.endswith('.ipynb') else n
        if n in self.pages: return self.pages[n].name
        if n in self.symbols:
            pg, anchor = self.symbols[n]
            return ('' if self.page and pg == self.page.name else pg) + '#' + anchor
        return None

    def _code_inline(self, tokens, idx, options, env):
        t = tokens[idx]
        code = f'<code>{html.escape(t.content)}</code>'
        href = self.link_for(t.content)
        return f'<a href="{html.escape(href)}">{code}</a>' if href else code

    def _rewrite_href(self, href:str, where:str) -> str:
        "Links to `NN_name.ipynb[#frag]` become links to that notebook's page; one to a missing notebook is a problem."
        m = re.match(r'^(?:\./)?([^/:#?]+)\.ipynb(#.*)?$', href)
        if not m: return href
        if m.group(1) in self.pages: return self.pages[m.group(1)].name + (m.group(2) or '')
        if self.page is not None: self.page.problems.append(f'{where}: link to a notebook that is not in nbs/: {href}')
        return href

    def markdown(self, src:str, where:str='', headings:bool=True, raw_html:bool=True) -> str:
        "HTML of markdown `src`; maths converted; problems recorded on the current page with `where` in the message."
        text, maths = extract_math(src)
        md = self.md if raw_html else self.md_text
        tokens = md.parse(text)
        for i, t in enumerate(tokens):
            if t.type == 'heading_open' and headings and self.page is not None:
                inline = tokens[i+1]
                label = ''.join(k.content for k in inline.children or [] if k.type in ('text', 'code_inline'))
                label = _re_ph.sub(lambda m: maths[int(m.group(1))][0], label) or inline.content
                hid = self.page.new_id(slugify(label))
                t.attrSet('id', hid)
                if t.tag == 'h2': self.page.toc.append((label, hid))
                inline.children.append(_anchor_token(inline, hid))
            for c in ([t] + list(t.children or [])):
                if c.type in ('link_open', 'image') and c.attrs:
                    key = 'href' if c.type == 'link_open' else 'src'
                    if key in c.attrs: c.attrSet(key, self._rewrite_href(str(c.attrs[key]), where))
        out = md.renderer.render(tokens, md.options, {})
        def in_tag(m):  # a formula inside an attribute (alt text, title): its TeX, not MathML
            return _re_ph.sub(lambda k: html.escape(maths[int(k.group(1))][0]), m.group(0))
        out = re.sub(r'<[^<>]*\ue000\d+\ue001[^<>]*>', in_tag, out)
        def put(m):
            tex, display = maths[int(m.group(1))]
            try: return tex_to_mathml(tex, display)
            except ValueError as e:
                d = '$$' if display else '$'
                if self.page is not None: self.page.problems.append(f'{where}: cannot convert {d}{tex}{d} to MathML: {e}')
                return f'<code class="math-error" title="{html.escape(str(e))}">{html.escape(tex)}</code>'
        return _re_ph.sub(put, out)

def _anchor_token(inline, hid):
    from markdown_it.token import Token
    t = Token('html_inline', '', 0)
    t.content = f'<a class="anchor" href="#{hid}" aria-label="link to this section">#</a>'
    return t

# ---------------------------------------------------------------------------------------------------------------
# Documentation of exported symbols (signature, docstring, docments table)

def exported_names(cell:dict) -> list[str]:
    "Names nbdev documents for an exported cell: its public functions and classes (`Cls.meth` for `@patch`)."
    from nbdev.showdoc import showdoc_nm
    try: tree = ast.parse(cell['source'])
    except SyntaxError: return []
    return [showdoc_nm(o) for o in tree.body if isinstance(o, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and (not o.name.startswith('_') or o.name.startswith('__'))]

def _anno(a) -> str:
    if a is inspect.Parameter.empty or a is None: return ''
    if isinstance(a, str): return a
    return inspect.formatannotation(a)

def _default(v) -> str:
    if v is inspect.Parameter.empty: return ''
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + '...'

def signature_text(obj, name:str) -> str:
    "`def name(a:int=1, ...)->R` or `class Name(...)`, one parameter a line when long."
    kw = 'class' if inspect.isclass(obj) else ('async def' if inspect.iscoroutinefunction(obj) else 'def')
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return f'{kw} {name}'
    parts, star = [], False
    for p in sig.parameters.values():
        if p.kind == p.KEYWORD_ONLY and not star: parts.append('*'); star = True
        pre = {p.VAR_POSITIONAL: '*', p.VAR_KEYWORD: '**'}.get(p.kind, '')
        if p.kind == p.VAR_POSITIONAL: star = True
        s = pre + p.name + (f':{_anno(p.annotation)}' if _anno(p.annotation) else '')
        if p.default is not p.empty: s += f'={_default(p.default)}'
        parts.append(s)
        if p.kind == p.POSITIONAL_ONLY and (len(parts) == len(sig.parameters) or
                                            list(sig.parameters.values())[len(parts)].kind != p.POSITIONAL_ONLY):
            parts.append('/')
    ret = '' if inspect.isclass(obj) else _anno(sig.return_annotation)
    ret = f'->{ret}' if ret else ''
    one = f'{kw} {name}({", ".join(parts)}){ret}'
    if len(one) <= 100: return one
    return f'{kw} {name}(\n' + ''.join(f'    {p},\n' for p in parts) + f'){ret}'

def _own_doc(obj) -> str:
    "The docstring written for `obj` (not the one dataclasses generate, nor an inherited one)."
    d = obj.__dict__.get('__doc__') if inspect.isclass(obj) else getattr(obj, '__doc__', None)
    if inspect.isclass(obj) and d and d.startswith(obj.__name__ + '('): return ''
    return inspect.cleandoc(d) if d else ''

def params_table(obj, r:Renderer, where:str) -> str:
    "Table of `obj`'s parameters: name, type, default, and its docments comment; the return as the last row."
    from fastcore.docments import docments
    try: d = docments(obj, full=True, returns=True)
    except Exception: return ''
    rows = []
    for nm, v in d.items():
        if nm == 'return':
            if inspect.isclass(obj) or (not v.get('docment') and not _anno(v.get('anno'))): continue
            nm_html = '<strong>Returns</strong>'
        else: nm_html = html.escape(nm)
        if nm in ('self', 'cls') and not v.get('docment'): continue
        anno, dflt = _anno(v.get('anno')), _default(v.get('default', inspect.Parameter.empty))
        doc = r.markdown(v['docment'], where, headings=False, raw_html=False).strip() if v.get('docment') else ''
        doc = re.sub(r'^<p>(.*)</p>$', r'\1', doc, flags=re.S)
        rows.append(f'<tr><td>{nm_html}</td><td>{html.escape(anno)}</td><td>{html.escape(dflt)}</td><td>{doc}</td></tr>')
    if not rows: return ''
    return ('<table class="params"><thead><tr><th></th><th>Type</th><th>Default</th><th>Details</th></tr></thead>'
            '<tbody>' + ''.join(rows) + '</tbody></table>')

def _public_methods(cls) -> list:
    "Public methods and properties defined in `cls`'s own body (not dataclass-generated), in source order."
    out = []
    for nm, v in cls.__dict__.items():
        if nm.startswith('_'): continue
        f = v.fget if isinstance(v, property) else getattr(v, '__func__', v)
        if not callable(f) or not getattr(f, '__qualname__', '').startswith(cls.__qualname__ + '.'): continue
        out.append((nm, v, f))
    return out

def doc_html(obj, name:str, r:Renderer, anchor:str, meth_ids:dict, where:str) -> str:
    "The documentation block of one exported symbol: heading, signature, docstring, parameter table, methods."
    out = [f'<div class="doc"><h3 id="{anchor}">{html.escape(name)}'
           f'<a class="anchor" href="#{anchor}" aria-label="link to {html.escape(name)}">#</a></h3>',
           f'<pre class="signature"><code>{highlight(signature_text(obj, name.split(".")[-1]))}</code></pre>']
    ds = _own_doc(obj)
    if ds: out.append(f'<div class="docstring">{r.markdown(ds, where, headings=False, raw_html=False)}</div>')
    out.append(params_table(obj, r, where))
    if inspect.isclass(obj):
        for nm, v, f in _public_methods(obj):
            mid = meth_ids[nm]
            sig = (f'@property\ndef {nm}(self)' if isinstance(v, property) else
                   signature_text(f, nm) if not isinstance(v, (classmethod, staticmethod)) else
                   f'@{type(v).__name__}\n' + signature_text(f, nm))
            out.append(f'<div class="method"><h4 id="{mid}">{html.escape(name)}.{html.escape(nm)}'
                       f'<a class="anchor" href="#{mid}" aria-label="link to {html.escape(nm)}">#</a></h4>'
                       f'<pre class="signature"><code>{highlight(sig)}</code></pre>')
            ds = _own_doc(f)
            if ds: out.append(f'<div class="docstring">{r.markdown(ds, where, headings=False, raw_html=False)}</div>')
            out.append(params_table(f, r, where) + '</div>')
    return '\n'.join(out) + '</div>'

def collect_docs(pages:list[Page], all_cells:dict, cfg:dict) -> dict:
    "Import every symbol the exported cells define, give it (and its methods) an id; the site's symbol -> (page, id)."
    symbols, lib = {}, cfg['lib_name']
    for p in pages:
        for c in all_cells[p.nb]:
            d = c['directives']
            if c['type'] != 'code' or is_hidden(c) or not ({'export', 'exports'} & set(d)): continue
            mod = (d.get('export') or d.get('exports') or [None])[0] or p.module
            for nm in exported_names(c):
                anchor, meth_ids = p.new_id(nm), {}
                try:
                    if not mod: raise ImportError('the notebook has no `#| default_exp`')
                    obj = resolve(mod if mod == lib or mod.startswith(lib + '.') else f'{lib}.{mod}', nm)
                except Exception as e: obj = e
                if inspect.isclass(obj):
                    meth_ids = {m: p.new_id(f'{anchor}.{m}') for m, _, _ in _public_methods(obj)}
                p.docs.setdefault(c['idx'], []).append((nm, obj, anchor, meth_ids))
                for key, hid in [(nm, anchor)] + [(f'{nm}.{m}', i) for m, i in meth_ids.items()]:
                    symbols.setdefault(key, (p.name, hid))
    return symbols

def resolve(module:str, name:str):
    "The object `name` (maybe `Cls.meth`) of `module`, imported."
    obj = importlib.import_module(module)
    for part in name.split('.'): obj = getattr(obj, part)
    return obj

# ---------------------------------------------------------------------------------------------------------------
# Outputs

_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else str(v)

def _stream_text(s:str) -> str:
    "What a terminal would show: ANSI codes stripped, each line what follows its last carriage return."
    s = _re_ansi.sub('', s)
    return '\n'.join(l.rstrip('\r').split('\r')[-1] for l in s.split('\n'))

_re_ipy_tb = re.compile(r'^-{20,}\n\S.*Traceback \(most recent call last\)', re.M)

def merge_traceback(outs:list[dict]) -> list[dict]:
    "A failed cell's outputs with IPython's traceback (printed to stdout) as the one error output, not shown twice."
    if not any(o.get('output_type') == 'error' for o in outs): return outs
    res, tb = [], None
    for o in outs:
        if o.get('output_type') == 'stream' and tb is None:
            txt = _re_ansi.sub('', _text(o.get('text', '')))
            m = _re_ipy_tb.search(txt)
            if m:
                tb = txt[m.start():]
                if txt[:m.start()].strip(): res.append({**o, 'text': txt[:m.start()]})
                continue
        res.append(o)
    if tb is None: return outs
    return [o if o.get('output_type') != 'error' else {**o, 'traceback': [tb.strip('\n')]} for o in res]

def render_output(o:dict, page:Page, out_dir:Path, r:Renderer, where:str) -> str:
    "HTML of one Jupyter output; images written as PNG/JPEG files under `img/`."
    ot = o.get('output_type')
    if ot == 'stream':
        cls = ' class="stderr"' if o.get('name') == 'stderr' else ''
        txt = _stream_text(_text(o.get('text', ''))).strip('\n')
        return f'<pre{cls}><code>{html.escape(txt)}</code></pre>' if txt.strip() else ''
    if ot == 'error':
        tb = _re_ansi.sub('', '\n'.join(o.get('traceback', [])) or f"{o.get('ename')}: {o.get('evalue')}")
        return f'<pre class="error"><code>{html.escape(tb)}</code></pre>'
    data, meta = o.get('data', {}), o.get('metadata', {}) or {}
    for mime, ext in (('image/png', 'png'), ('image/jpeg', 'jpg')):
        if mime in data:
            page.images += 1
            rel = f'{IMG_DIR}/{page.name[:-5]}-{page.images}.{ext}'
            (out_dir/IMG_DIR).mkdir(parents=True, exist_ok=True)
            (out_dir/rel).write_bytes(base64.b64decode(_text(data[mime])))
            m = meta.get(mime, {}) if isinstance(meta.get(mime), dict) else {}
            size = ''.join(f' {k}="{int(m[k])}"' for k in ('width', 'height') if k in m)
            alt = html.escape(_text(data.get('text/plain', 'plot')).strip()[:100])
            return f'<img src="{rel}" alt="{alt}"{size}>'
    if 'image/svg+xml' in data: return f'<div class="svg">{_text(data["image/svg+xml"])}</div>'
    if 'text/html' in data: return f'<div class="html">{_text(data["text/html"])}</div>'
    if 'text/markdown' in data: return f'<div class="markdown">{r.markdown(_text(data["text/markdown"]), where, False)}</div>'
    if 'text/latex' in data:
        tex = _text(data['text/latex']).strip().strip('$')
        try: return tex_to_mathml(tex, True)
        except ValueError: pass
    if 'text/plain' in data: return f'<pre><code>{html.escape(_text(data["text/plain"]))}</code></pre>'
    return ''

# ---------------------------------------------------------------------------------------------------------------
# Pages

def nb_title(cells:list[dict], nb:Path) -> str:
    "The first `# ` heading of the notebook, else its name with the number dropped (as nbdev titles pages)."
    for c in cells:
        if c['type'] == 'markdown':
            m = re.search(r'^#\s+(.+?)\s*#*\s*$', c['source'], re.M)
            if m: return m.group(1)
    return _re_num.sub('', nb.stem).replace('_', ' ')

def default_exp(cells:list[dict]) -> str|None:
    "The notebook's `#| default_exp` module."
    for c in cells:
        if 'default_exp' in c['directives'] and c['directives']['default_exp']: return c['directives']['default_exp'][0]
    return None

def render_cells(page:Page, cells:list[dict], executed:dict|None, cfg:dict, r:Renderer, out_dir:Path) -> str:
    "The body of a page: markdown, shown code, outputs, and the documentation of exported symbols."
    parts, rel = [], f"{cfg.get('nbs_path', 'nbs')}/{page.nb.name}"
    outputs = (executed or {}).get('outputs')
    err = (executed or {}).get('error')
    for c in cells:
        where = f'{rel} cell {c["idx"] + 1}'
        if c['type'] == 'markdown':
            parts.append(f'<div class="cell markdown">{r.markdown(c["source"], where)}</div>'); continue
        if c['type'] != 'code' or is_hidden(c): continue
        d, body = c['directives'], []
        if _flag(d, 'echo') != 'false' and c['shown'].strip():
            body.append(f'<pre class="source"><code class="language-python">{highlight(c["shown"])}</code></pre>')
        if _flag(d, 'output') != 'false':
            outs = outputs.get(c['idx'], []) if outputs is not None else c['outputs']
            rendered = [render_output(o, page, out_dir, r, where) for o in merge_traceback(outs)]
            rendered = [x for x in rendered if x]
            if rendered: body.append('<div class="output">' + '\n'.join(rendered) + '</div>')
        if err and err.get('cell') == c['idx']:
            body.append('<div class="banner">This cell raised an error when the site was built; the cells after it did '
                        'not run.</div>')
        for nm, obj, anchor, meth_ids in page.docs.get(c['idx'], []):
            if isinstance(obj, Exception):
                msg = f'{where}: cannot document `{nm}`: {type(obj).__name__}: {obj}'
                page.problems.append(msg)
                body.append(f'<div class="doc doc-missing" id="{anchor}"><h3>{html.escape(nm)}</h3>'
                            f'<p>{html.escape(msg)}</p></div>')
            else: body.append(doc_html(obj, nm, r, anchor, meth_ids, where))
        if body: parts.append(f'<div class="cell code" id="cell-{c["idx"] + 1}">' + '\n'.join(body) + '</div>')
    return '\n'.join(parts)

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="description" content="{description}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<nav class="sidebar" aria-label="notebooks">
<a class="site-title" href="index.html">{site}</a>
<p class="site-description">{description}</p>
<ol>
{items}
</ol>
</nav>
<main>
{banner}{body}
</main>
<footer>Built from <code>{nb}</code> by <code>tools/docs.py</code>.</footer>
</body>
</html>
"""

def sidebar(pages:list[Page], current:Page) -> str:
    "The list of pages in notebook order; the current one marked active, with its H2 headings under it."
    items = []
    for p in pages:
        if p is current:
            toc = ''.join(f'<li><a href="#{hid}">{html.escape(re.sub(r"<[^>]+>", "", t))}</a></li>' for t, hid in p.toc)
            items.append(f'<li><a class="active" aria-current="page" href="{p.name}">{html.escape(p.title)}</a>'
                         + (f'<ol class="toc">{toc}</ol>' if toc else '') + '</li>')
        else: items.append(f'<li><a href="{p.name}">{html.escape(p.title)}</a></li>')
    return '\n'.join(items)

def _copy_local_images(body:str, nbs:Path, out:Path):
    "Local images that markdown cells reference (`![](images/x.png)`) are copied beside the pages."
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', body):
        src = html.unescape(src)
        if re.match(r'^[a-z]+:', src) or src.startswith(('/', '#', IMG_DIR + '/')): continue
        f = (nbs/src).resolve()
        if f.is_file() and nbs.resolve() in f.parents:
            (out/src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out/src)

def clean_out(out:Path):
    "Remove what an earlier build wrote (pages, images, stylesheet), keeping anything else such as README.md."
    for p in out.glob('*.html'): p.unlink()
    if (out/CSS_NAME).exists(): (out/CSS_NAME).unlink()
    if (out/IMG_DIR).is_dir(): shutil.rmtree(out/IMG_DIR)

def stylesheet() -> str:
    "The site's CSS: tools/docs_assets/docs.css and the Pygments colours."
    css = (ASSETS/CSS_NAME).read_text()
    try:
        from pygments.formatters import HtmlFormatter
        rules = HtmlFormatter(style='default').get_style_defs('pre code').splitlines()
        css += '\n/* Pygments token colours */\n' + '\n'.join(l for l in rules if l.startswith('pre code .'))
    except ImportError: pass
    return css

def build(root:Path=ROOT, out:Path|str|None=None, execute:bool=True, keep_going:bool=False, n_workers:int=1,
          timeout:int|None=None, log=print) -> dict:
    "Build the site of the repository at `root` into `out`; returns {'pages': [...], 'problems': [...], 'seconds': ...}."
    t0 = time.time()
    root = Path(root).resolve()
    cfg = read_settings(root)
    out = Path(out) if out is not None else root/'docs'
    out = out if out.is_absolute() else (Path.cwd()/out)
    nbs = root/cfg.get('nbs_path', 'nbs')
    nb_files = list_notebooks(nbs)
    if not nb_files: raise BuildError(f'{nbs}: no notebooks')
    if str(root) not in sys.path: sys.path.insert(0, str(root))
    flags = set(cfg.get('tst_flags', '').split())
    all_cells = {nb: read_cells(nb) for nb in nb_files}
    pages = [Page(nb, page_name(nb), nb_title(all_cells[nb], nb), default_exp(all_cells[nb])) for nb in nb_files]
    names = [p.name for p in pages]
    dup = {n for n in names if names.count(n) > 1}
    if dup: raise BuildError(f'{nbs}: notebooks would share the page name(s) {sorted(dup)}')
    by_stem = {p.nb.stem: p for p in pages}
    symbols = collect_docs(pages, all_cells, cfg)
    executed, problems = {}, []
    if execute:
        log(f'executing {len(nb_files)} notebooks ({n_workers} at a time; cells flagged {sorted(flags)} skipped)')
        with ThreadPoolExecutor(max(1, n_workers)) as ex:
            futs = {ex.submit(execute_notebook, nb, root, flags, timeout): nb for nb in nb_files}
            for f in as_completed(futs):
                nb, res = futs[f], f.result()
                executed[nb] = res
                err = res.get('error')
                log(f"  {nb.name}: {'FAILED' if err else 'ok'} in {res.get('seconds', 0):.1f} s")
                if err:
                    cell = f"cell {err['cell'] + 1}" if err.get('cell') is not None else 'the worker'
                    msg = f"{cfg.get('nbs_path', 'nbs')}/{nb.name} {cell}: {err['ename']}: {err['evalue']}"
                    problems.append(msg)
                    log(err.get('traceback', ''))
                    if not keep_going:
                        for g in futs: g.cancel()
                        raise BuildError(msg + '\n(the cell number counts from 1; `--keep-going` builds the site '
                                               'anyway with the failure marked on the page)')
    r = Renderer(by_stem, symbols)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix='.build-') as tmp:
        tmp, htmls = Path(tmp), {}
        for p in pages:
            r.page = p
            body = render_cells(p, all_cells[p.nb], executed.get(p.nb), cfg, r, tmp)
            htmls[p] = body
        page_problems = [m for p in pages for m in p.problems]
        if page_problems and not keep_going:
            raise BuildError('\n'.join(page_problems) + '\n(`--keep-going` builds the site anyway with these marked)')
        problems += page_problems
        for p in pages:
            err = executed.get(p.nb, {}).get('error')
            banner = ''
            if err or p.problems:
                lines = ([f"Executing this notebook failed at cell {err['cell'] + 1 if err.get('cell') is not None else '?'}"
                          f": {err['ename']}: {err['evalue']}"] if err else []) + p.problems
                banner = '<div class="banner">' + '<br>'.join(html.escape(l) for l in lines) + '</div>\n'
            doc = TEMPLATE.format(title=html.escape(p.title if p.name == 'index.html' and p.title == cfg.get('title')
                                                    else f"{p.title} – {cfg.get('title', '')}"),
                                  site=html.escape(cfg.get('title', '')), description=html.escape(cfg.get('description', '')),
                                  css=CSS_NAME, items=sidebar(pages, p), banner=banner, body=htmls[p],
                                  nb=f"{cfg.get('nbs_path', 'nbs')}/{p.nb.name}")
            (tmp/p.name).write_text(doc, encoding='utf-8')
            _copy_local_images(htmls[p], nbs, tmp)
        (tmp/CSS_NAME).write_text(stylesheet(), encoding='utf-8')
        clean_out(out)
        for f in sorted(tmp.rglob('*')):
            if f.is_file():
                (out/f.relative_to(tmp)).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(f), out/f.relative_to(tmp))
    secs = time.time() - t0
    log(f'wrote {len(pages)} pages to {out} in {secs:.1f} s' + (f' with {len(problems)} problem(s) marked:' if problems else ''))
    for m in problems: log(f'  {m}')
    return dict(pages=[out/p.name for p in pages], problems=problems, seconds=secs, out=out)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=None, help='folder to write the site to (default: docs/ of the repository)')
    ap.add_argument('--no-exec', action='store_true', help='do not execute the notebooks (no outputs, no plots; fast)')
    ap.add_argument('--keep-going', action='store_true',
                    help='build the site even when a cell fails or a symbol cannot be documented, marking it on the page')
    ap.add_argument('--n_workers', type=int, default=1, help='notebooks executed at once (default 1)')
    ap.add_argument('--timeout', type=int, default=None, help='seconds a cell may run (default: no limit)')
    ap.add_argument('--root', default=str(ROOT), help='repository root holding settings.ini (default: this repository)')
    ap.add_argument('--exec-worker', nargs=2, metavar=('NOTEBOOK', 'JSON'), help=argparse.SUPPRESS)
    ap.add_argument('--flags', default='', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.exec_worker:
        return _worker(a.exec_worker[0], a.exec_worker[1], a.root, a.flags.split(), a.timeout)
    try: build(Path(a.root), a.out, execute=not a.no_exec, keep_going=a.keep_going, n_workers=a.n_workers, timeout=a.timeout)
    except BuildError as e:
        print(f'docs build FAILED: {e}', file=sys.stderr)
        sys.exit(1)

if __name__ == '__main__': main()
