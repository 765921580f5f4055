"Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which is not available here)."
import json
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    "Markdown of the landing-page notebook: markdown cells as they are, shown code cells as python blocks."
    out = []
    for c in json.loads(Path(nb_path).read_text())['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#|'): continue
        out.append(src if c['cell_type'] == 'markdown' else f'```python\n{src}\n```')
    out.append('<!-- Written by tools/readme.py from nbs/index.ipynb: edit the notebook, then run `make readme`. -->')
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    (root/'README.md').write_text(render())
