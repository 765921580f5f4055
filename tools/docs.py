"""Build the offline documentation site of this nbdev repository from its notebooks: `python tools/docs.py [--out docs]`.

The pages are what `nbdev_docs` would publish, without Quarto (not installable here), JavaScript or a CDN:
1. each notebook of `nbs/` is executed with execnb's `CaptureShell` in a subprocess, cwd = `nbs/`, skipping the cells
   `nbdev_test` skips (the settings' `tst_flags`, `#| eval: false`); `--no-exec` keeps the stored outputs;
2. nbdev's own processors (`FilterDefaults().procs()`, what `nbdev_proc_nbs` applies before Quarto) rewrite it:
   frontmatter, `show_doc` cells after `#| export` cells, `#| hide` / `hide_line` / `exporti`, links to symbols;
3. nbconvert's `HTMLExporter` renders it with `docs_assets/page.html.j2` (sidebar, stylesheet) into one page per
   notebook, named as nbdev names them (`05_loss.ipynb` -> `loss.html`), index.ipynb first, the rest sorted.

Hand-written, because no library here does it:
- `show_docs`: nbdev's `exec_show_docs` re-runs every import and export cell in a new shell (a notebook that mixes
  imports with other code fails there); ours runs only the `show_doc` cells, in the shell that ran the notebook,
  with the names of its `default_exp` module at hand;
- what Quarto does after nbdev: cell options (`#| echo: false`, `#| output: false`, `#| include: false`) become
  nbconvert's remove tags; ids of headings as pandoc makes them (nbdev's links point at them); links to `.ipynb`
  files and to the site's own `doc_host` made relative; the title and description of the frontmatter;
- maths: `$...$` / `$$...$$` (found by nbconvert's markdown parser) become MathML at build time with latex2mathml,
  mended where it falls short (`mathvariant`, which Chromium ignores, as Unicode letters; `<` in `\\text`; `aligned`);
- nbdev's `FrontmatterProc` drops the whole markdown cell holding the `# title`; the title cell is split first;
- nbdev links `Cls.meth` to `#cls.meth`, which `show_doc` only makes for a method shown on its own: such links go
  to `#cls`; a failed cell's traceback, which IPython also prints, is kept once.
As on nbdev's sites, an `#| export` cell shows its docs, not its source (`rm_export`; `skip_procs = rm_export` in
settings.ini shows both).

A cell that raises, a symbol that cannot be documented or maths that cannot be converted stops the build with exit
status 1, naming the notebook and cell; `--keep-going` writes the site anyway with each problem marked on its page.
"""
from __future__ import annotations
import argparse, html, importlib, json, os, re, shutil, subprocess, sys, tempfile, unicodedata
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent/'docs_assets'

class BuildError(Exception):
    "The site could not be built; the message says which notebook, cell and why."

def settings(root:Path):
    "nbdev's config of the repository at `root` (its settings.ini)."
    from nbdev.config import Config, _apply_defaults, _types   # get_config(path=) reads the one above the cwd
    if not (Path(root)/'settings.ini').exists(): raise BuildError(f'{root}/settings.ini: not found')
    return _apply_defaults(Config(Path(root).resolve(), 'settings.ini', types=_types))

def page_name(nb:Path) -> str: from nbdev.doclinks import _nbpath2html; return _nbpath2html(Path(nb)).name

def list_notebooks(nbs:Path) -> list[Path]:
    "Notebooks of `nbs` in sidebar order: index.ipynb first, then by name; `_` and `.` files skipped."
    return sorted((p for p in Path(nbs).glob('*.ipynb') if not p.name.startswith(('_', '.'))),
                  key=lambda p: (p.stem != 'index', p.name))

# ---------------------------------------------------------------------------------------------------------------
# Processing one notebook (in a subprocess: `python tools/docs.py --proc NB OUT`)

class show_docs:
    "Run the `show_doc` cells `add_show_docs` inserted, in `shell`, with the module's names it lacks."
    def __init__(self, shell, module:str|None, problems:list): self.shell, self.module, self.problems = shell, module, problems
    def __call__(self, cell):
        if not getattr(cell, 'has_sd', False): return
        if self.module:
            try: self.shell.user_ns.update({**vars(importlib.import_module(self.module)), **self.shell.user_ns})
            except Exception as e: self.problems.append(f'cannot import {self.module}: {e!r}')
            self.module = None
        self.shell.cell(cell)
        if self.shell.exc: self.problems.append(f'cannot document {cell.source.splitlines()[-1]}: {self.shell.exc!r}')

def _split_title(nb):
    "Put the first `# title` and `> description` lines in a cell of their own (FrontmatterProc consumes that cell)."
    from execnb.nbio import mk_cell
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'markdown' or not re.search(r'^#\s+\S', c.source, re.M): continue
        head = re.match(r'\s*#\s+\S[^\n]*\n(\s*>\s+\S[^\n]*\n?)?', c.source + '\n')
        if head and c.source[head.end():].strip():
            nb.cells[i:i+1] = [mk_cell(head.group(0), 'markdown'), mk_cell(c.source[head.end():], 'markdown')]
        return

def proc_nb(nb_path:Path, out:Path, execute:bool, flags:set) -> list[str]:
    "Execute `nb_path` (unless not `execute`), apply nbdev's processors, write it to `out`; the problems found."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, exec_show_docs, _default_exp
    os.environ['IN_TEST'] = '1'
    nb_path, problems = Path(nb_path).resolve(), []
    cfg = get_config()                               # the settings.ini above the cwd, the repository's
    nb = read_nb(nb_path)
    nb.path_ = str(nb_path)
    for i, c in enumerate(nb.cells): c.idx_ = i
    shell = CaptureShell(nb_path)
    os.chdir(nb_path.parent)
    shell.run('from nbdev.showdoc import show_doc')
    if execute:
        NBProcessor(nb=nb, rm_directives=False)    # parses `cell.directives_` as nbdev_test does
        def skip(c):
            d = c.directives_
            return (c.cell_type != 'code' or 'nbdev_export' + '(' in c.source or flags & d.keys()
                    or d.get('eval:', [''])[0].lower() == 'false')
        try: shell.run_all(nb, exc_stop=True, preproc=skip)
        except Exception as e:
            problems.append(f'cell {shell._cell_idx}: {type(e).__name__}: {e}')
            c = nb.cells[shell._cell_idx - 1]                  # IPython's traceback, printed, repeats the error output
            for o in c.outputs:
                if o.output_type == 'stream': o.text = re.split(r'^(?:\x1b\[[\d;]*m)*-{40,}', ''.join(o.text), flags=re.M)[0]
            c.outputs = [o for o in c.outputs if o.output_type != 'stream' or o.text.strip()]
            print(shell.prettytb(fname=nb_path), file=sys.stderr)
    os.chdir(cfg.config_path)                        # where nbdev_proc_nbs runs (source links find ecor/*.py)
    _split_title(nb)
    mod = _default_exp(nb) and f"{cfg.lib_name}.{_default_exp(nb)}"
    procs = [show_docs(shell, mod, problems) if p is exec_show_docs else p for p in FilterDefaults().procs()]
    NBProcessor(nb=nb, procs=procs).process()
    for c in nb.cells: c.pop('has_sd', None)
    write_nb(nb, out)
    return problems

# ---------------------------------------------------------------------------------------------------------------
# Maths: TeX -> MathML at build time

_MV = {'bold-italic': 'BOLD ITALIC', 'bold-script': 'BOLD SCRIPT', 'bold-fraktur': 'BOLD FRAKTUR',
       'bold-sans-serif': 'SANS-SERIF BOLD'}

def _mv_char(ch:str, variant:str) -> str:
    "`ch` as the Unicode mathematical letter of `variant` (MathML Core ignores `mathvariant`), holes included."
    v, n = _MV.get(variant, variant.upper()), unicodedata.name(ch, '').replace('LATIN ', '').replace('LETTER ', '')
    for name in (f'MATHEMATICAL {v} {n}', f'{v.replace("FRAKTUR", "BLACK-LETTER")} {n}',
                 'PLANCK CONSTANT' if (v, ch) == ('ITALIC', 'h') else '-'):
        try: return unicodedata.lookup(name)
        except KeyError: pass
    return ch

def _fix_mathvariant(mathml:str) -> str:
    "`mathvariant` on letters as Unicode letters; on `mtext` as a font style."
    def mi(m):
        if m.group(2) == 'normal': return m.group(0)
        return f'<{m.group(1)}>' + html.escape(''.join(_mv_char(c, m.group(2)) for c in html.unescape(m.group(3)))) + f'</{m.group(1)}>'
    mathml = re.sub(r'<(mi|mn)\s+mathvariant="([\w-]+)">([^<]*)</\1>', mi, mathml)
    styles = {'monospace': 'font-family:monospace', 'bold': 'font-weight:bold', 'italic': 'font-style:italic'}
    return re.sub(r'<mtext\s+mathvariant="([\w-]+)">', lambda m: f'<mtext style="{styles.get(m.group(1), "")}">', mathml)

def _protect_text(tex:str) -> str:
    "latex2mathml copies `<`, `>`, `&` of `\\text{...}` raw into XML: mark them there, turn the rest into \\lt / \\gt."
    out, i = [], 0
    for m in re.finditer(r'\\(?:text\w*|mbox|mathrm|operatorname)\s*\{', tex):
        if m.start() < i: continue
        out.append(tex[i:m.end()].replace('<', r'\lt ').replace('>', r'\gt '))
        depth, j = 1, m.end()
        while j < len(tex) and depth:
            depth += {'{': 1, '}': -1}.get(tex[j], 0) if tex[j-1] != '\\' else 0
            j += 1
        out.append(tex[m.end():j].replace('<', '\ue010').replace('>', '\ue011').replace(r'\&', '\ue012'))
        i = j
    return ''.join(out + [tex[i:].replace('<', r'\lt ').replace('>', r'\gt ')])

def tex_to_mathml(tex:str, display:bool) -> str:
    "MathML of a TeX formula; raises ValueError when latex2mathml cannot convert it (unknown command, bad syntax)."
    from latex2mathml.converter import convert
    src = re.sub(r'\\(arg)(?![A-Za-z])', r'\\operatorname{\1}', re.sub(r'\\(begin|end)\{aligned\}', r'\\\1{align*}', tex.strip()))
    try: out = convert(_protect_text(src), display='block' if display else 'inline')
    except Exception as e: raise ValueError(f'{type(e).__name__}: {e}') from None
    out = out.replace('\ue010', '&lt;').replace('\ue011', '&gt;').replace('\ue012', '&amp;')
    try: tree = ET.fromstring(out)
    except ET.ParseError as e: raise ValueError(f'not well-formed MathML ({e}); an `&` outside an environment?') from None
    bad = [t.text for t in tree.iter() if t.tag.endswith(('}mi', '}mo')) and t.text and re.match(r'\\[A-Za-z]+', t.text)]
    if bad: raise ValueError(f'unknown command {bad[0]}')
    return _fix_mathvariant(out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', '', 1))

# ---------------------------------------------------------------------------------------------------------------
# Rendering a processed notebook with nbconvert

def slugify(s:str) -> str:
    "The id pandoc (so Quarto) gives a heading: lower case, only letters, digits, `_-.`, spaces as `-`."
    s = re.sub(r'[^\w\s.-]', '', re.sub(r'<[^>]+>', '', html.unescape(s)).strip().lower())
    return re.sub(r'\s+', '-', re.sub(r'^[^a-z]+', '', s)) or 'section'

def exporter(problems:list):
    "nbconvert's HTMLExporter with our template, maths as MathML (failures into `problems`) and pandoc's heading ids."
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    from jinja2 import pass_context
    def mathml(tex, display):
        try: return tex_to_mathml(html.unescape(tex), display)
        except ValueError as e:
            problems.append(f'cannot convert {"$$" if display else "$"}{tex}: {e}')
            return f'<code class="math-error" title="{html.escape(str(e))}">{tex}</code>'
    class Renderer(IPythonRenderer):
        def block_math(self, body): return mathml(body, True)
        def inline_math(self, body): return mathml(body, False)
        def heading(self, text, level, **attrs):
            hid = slugify(text)
            return f'<h{level} id="{hid}">{text} <a class="anchor" href="#{hid}" aria-label="link here">#</a></h{level}>\n'
    class Exporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            return MarkdownWithMath(renderer=Renderer(escape=False)).render(re.sub(r'(\]\([^)]*\))\{[^}\n]*\}', r'\1', source))
    ex = Exporter(template_name='classic', template_file='page.html.j2', extra_template_paths=[str(ASSETS)],
                  exclude_input_prompt=True, exclude_output_prompt=True)
    ex.register_filter('mathml', lambda tex: mathml(tex.strip().strip('$'), True))
    ex.register_filter('slug', slugify)
    return ex

def cell_options(nb):
    "Quarto's cell options left by nbdev (`#| echo: false`...) as nbconvert's remove tags; their lines taken out."
    from nbdev.process import extract_directives
    for c in nb.cells:
        if c.cell_type != 'code': continue
        d = {k: v[0].lower() for k, v in extract_directives(c).items() if v}
        tags = {'remove_input': d.get('echo:') == 'false', 'remove_output': d.get('output:') == 'false',
                'remove_cell': d.get('include:') == 'false' or (not c.source.strip() and not c.get('outputs'))}
        c.metadata['tags'] = [t for t, on in tags.items() if on]

def render(nb_file:Path, pages:list, current:Path, cfg, problems:list) -> str:
    "The HTML page of processed notebook `nb_file` (the page of `current`), with the sidebar of `pages`."
    import nbformat
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbdev.frontmatter import _fm2dict
    nb = nbformat.read(nb_file, as_version=4)
    fm = next((_fm2dict(c.source) for c in nb.cells if c.cell_type == 'raw'), {})
    cell_options(nb)
    ex = exporter(problems)
    ex.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={'remove_cell'}, remove_input_tags={'remove_input'},
                                                   remove_all_outputs_tags={'remove_output'}), enabled=True)
    site = dict(title=cfg.title, description=cfg.get('description', ''), nb=current.relative_to(cfg.config_path).as_posix(),
                pages=pages, current=page_name(current), fm=fm, problems=problems)
    out, _ = ex.from_notebook_node(nb, resources=dict(site=site))
    base = f"{cfg.get('doc_host', '')}{cfg.get('doc_baseurl', '')}".rstrip('/') + '/'
    out = out.replace(f'href="{base}', 'href="') if base != '/' else out
    def ipynb(m):
        nb = cfg.nbs_path/f'{m.group(2)}.ipynb'
        if not nb.exists(): problems.append(f'link to a notebook that is not in nbs/: {m.group(2)}.ipynb')
        return f'{m.group(1)}{page_name(nb)}{m.group(3)}'
    return re.sub(r'(href=")(?:\./)?([^"/:#?]+)\.ipynb([#"])', ipynb, out)

def fix_anchors(htmls:dict) -> dict:
    "Symbol links to what nbdev does not document: a method (`#cls.meth`) goes to its class's entry, a private helper to its page."
    ids = {n: set(re.findall(r'\sid="([^"]+)"', h)) for n, h in htmls.items()}
    def fix(name, m):
        page, frag = m.group(1) or name, m.group(2)
        while frag not in ids.get(page, {frag}) and '.' in frag: frag = frag.rpartition('.')[0]
        return f'href="{m.group(1)}#{frag}"' if frag in ids.get(page, {frag}) else f'href="{page}"'
    return {n: re.sub(r'href="([\w.-]*\.html|)#([^"]+)"', lambda m: fix(n, m), h) for n, h in htmls.items()}

# ---------------------------------------------------------------------------------------------------------------
# The site

def _proc_sub(nb:Path, out:Path, root:Path, execute:bool, flags:set) -> list[str]:
    "`proc_nb` in a fresh interpreter (one shell, one plot backend, one import of the library per notebook)."
    cmd = [sys.executable, __file__, '--proc', str(nb), str(out), '--root', str(root), '--flags', ' '.join(flags)]
    p = subprocess.run(cmd + ([] if execute else ['--no-exec']), capture_output=True, text=True, cwd=root,
                       env={**os.environ, 'PYTHONPATH': os.pathsep.join([str(root), os.environ.get('PYTHONPATH', '')])})
    if p.returncode != 0 or not out.exists(): return [f'processing failed (exit {p.returncode}): {p.stderr[-3000:]}']
    if p.stderr.strip(): print(p.stderr, file=sys.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])

def build(root:Path=ROOT, out:Path|str|None=None, execute:bool=True, keep_going:bool=False, n_workers:int=1,
          log=print) -> dict:
    "Build the site of the repository at `root` into `out`; returns {'pages': [...], 'problems': [...], 'out': ...}."
    root = Path(root).resolve()
    cfg = settings(root)
    out = Path(out).resolve() if out is not None else root/'docs'
    nbs = list_notebooks(cfg.nbs_path)
    if not nbs: raise BuildError(f'{cfg.nbs_path}: no notebooks')
    names = [page_name(nb) for nb in nbs]
    if len(set(names)) < len(names): raise BuildError(f'notebooks would share a page name: {names}')
    flags = set(cfg.get('tst_flags', '').split())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log(f'processing {len(nbs)} notebooks' + (f' (executing; cells flagged {sorted(flags)} skipped)' if execute else ''))
        with ThreadPoolExecutor(max(1, n_workers)) as ex:
            found = list(ex.map(lambda nb: _proc_sub(nb, tmp/nb.name, root, execute, flags), nbs))
        titles = {nb: nb.stem for nb in nbs}
        from nbdev.frontmatter import _fm2dict
        for nb in nbs:
            if (tmp/nb.name).exists():
                raw = [c for c in json.loads((tmp/nb.name).read_text())['cells'] if c['cell_type'] == 'raw']
                titles[nb] = (_fm2dict(''.join(raw[0]['source'])) if raw else {}).get('title', nb.stem)
        pages = [(page_name(nb), titles[nb]) for nb in nbs]
        htmls = fix_anchors({page_name(nb): render(tmp/nb.name, pages, nb, cfg, probs) if (tmp/nb.name).exists() else ''
                             for nb, probs in zip(nbs, found)})
    where = {nb: nb.relative_to(root).as_posix() for nb in nbs}
    problems = [f'{where[nb]} {p}' if p.startswith('cell ') else f'{where[nb]}: {p}' for nb, ps in zip(nbs, found) for p in ps]
    if problems and not keep_going:
        raise BuildError('\n'.join(problems) + '\n(cells count from 1; `--keep-going` builds the site anyway, marked)')
    out.mkdir(parents=True, exist_ok=True)
    for p in out.glob('*.html'): p.unlink()
    for name in names: (out/name).write_text(htmls[name], encoding='utf-8')
    shutil.copy2(ASSETS/'docs.css', out/'docs.css')
    from pygments.formatters import HtmlFormatter
    with open(out/'docs.css', 'a') as f: f.write('\n' + HtmlFormatter(style='default').get_style_defs('.highlight'))
    log(f'wrote {len(nbs)} pages to {out}' + ''.join(f'\n  {p}' for p in problems))
    return dict(pages=[out/n for n in names], problems=problems, out=out)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=None, help='folder to write the site to (default: docs/ of the repository)')
    ap.add_argument('--no-exec', action='store_true', help='do not execute the notebooks (stored outputs; fast)')
    ap.add_argument('--keep-going', action='store_true', help='build the site despite problems, marking them on the page')
    ap.add_argument('--n_workers', type=int, default=1, help='notebooks processed at once (default 1)')
    ap.add_argument('--root', default=str(ROOT), help='repository root holding settings.ini (default: this repository)')
    ap.add_argument('--proc', nargs=2, metavar=('NOTEBOOK', 'OUT'), help=argparse.SUPPRESS)
    ap.add_argument('--flags', default='', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.proc: return print(json.dumps(proc_nb(Path(a.proc[0]), Path(a.proc[1]), not a.no_exec, set(a.flags.split()))))
    try: build(Path(a.root), a.out, execute=not a.no_exec, keep_going=a.keep_going, n_workers=a.n_workers)
    except BuildError as e: sys.exit(f'docs build FAILED: {e}')

if __name__ == '__main__': main()
