"""The committed notebooks stay clean and small: outputs that teach (results, tables, figures), never warnings,
progress bars, local paths or timings. `python tests/test_notebooks.py --fix` cleans them in place: it drops what
went to stderr (warnings, progress bars) and stores figures as 24-colour PNGs (a quarter of the bytes; a line plot has
few colours, and its antialiased edges look the same)."""
import base64, io, json, re, sys
from pathlib import Path

NBS = Path(__file__).parents[1] / 'nbs'
MAX_OUTPUTS = 200_000       # bytes of outputs, all committed notebooks together (what the clean-up of 1.59 MB was about)
MAX_TOTAL = 1_350_000       # bytes, all committed notebooks together: code and prose grow with the library (10_runs, 13_report: +50 kB)
MAX_FIGURE = 80_000         # bytes of base64 per figure
COLOURS = 24                # of a stored figure's palette
NOISE = re.compile(r'finished in \d+ s|/tmp/|/work/|/root/|/home/|Warning:|UserWarning|FutureWarning|it/s\]|s/it\]|Wall time|CPU times')
TIMING = re.compile(r"'wall_s': \d")  # a run's seconds: results in a benchmark notebook, noise in any other


def notebooks():
    return sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


def outputs(nb):
    "(cell id, output) of every output of notebook `nb` (a dict)."
    return [(c.get('id'), o) for c in nb['cells'] for o in c.get('outputs', [])]


def texts(o) -> list[str]:
    "The text an output shows (stream text, or every non-image representation)."
    if 'text' in o: return [''.join(o['text'])]
    return [''.join(v) if isinstance(v, list) else str(v) for k, v in o.get('data', {}).items() if not k.startswith('image/')]


def small_png(b64:str, shown:dict|None=None) -> str:
    "The figure at the size it is `shown` (a retina figure has twice the pixels) as a `COLOURS`-colour PNG, if smaller (idempotent)."
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(b64)))
    w, h = (shown or {}).get('width'), (shown or {}).get('height')
    resize = bool(w and h and w < im.width)
    if im.mode == 'P' and len(im.getcolors(256) or range(257)) <= COLOURS and not resize: return b64
    if resize: im = im.convert('RGB').resize((w, h), Image.LANCZOS)
    buf = io.BytesIO()
    im.convert('RGB').quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(buf, 'PNG', optimize=True)
    new = base64.b64encode(buf.getvalue()).decode()
    return new if len(new) < len(b64) else b64


def clean(nb:dict) -> dict:
    "`nb` without stderr outputs, its figures as small PNGs."
    for c in nb['cells']:
        if 'outputs' not in c: continue
        c['outputs'] = [o for o in c['outputs'] if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
        for o in c['outputs']:
            png = o.get('data', {}).get('image/png')
            if png:
                o['data']['image/png'] = small_png(''.join(png) if isinstance(png, list) else png, o.get('metadata', {}).get('image/png'))
                o.get('metadata', {}).pop('image/png', None)  # stored at the size it is shown
    return nb


def test_no_noise_in_outputs():
    bad = [f'{p.relative_to(NBS)} cell {cid}: {m.group(0)!r} in {t[max(0, m.start() - 40):m.end() + 40]!r}'
           for p in notebooks() for cid, o in outputs(json.loads(p.read_text()))
           for t in texts(o) for m in [NOISE.search(t) or ('benchmarks' not in p.parts and TIMING.search(t))] if m]
    stderr = [f'{p.relative_to(NBS)} cell {cid}' for p in notebooks() for cid, o in outputs(json.loads(p.read_text()))
              if o.get('output_type') == 'stream' and o.get('name') == 'stderr']
    assert not bad and not stderr, ('outputs with local paths, warnings, progress bars or timings; clean them with '
                                   f'`python tests/test_notebooks.py --fix` or change the cell: {bad[:10]} {stderr[:10]}')


def test_notebooks_stand_alone():
    "No notebook cites a document outside the repository (a reader of the docs site or a clone has only the repository)."
    outside = re.compile(r'DESIGN\.md|STYLE\.md|\.\./shared')
    bad = [f'{p.relative_to(NBS)} cell {c.get("id")}: {m.group(0)}' for p in notebooks() for c in json.loads(p.read_text())['cells']
           for m in [outside.search(''.join(c['source']))] if m]
    assert not bad, bad


def test_notebooks_are_small():
    sizes = {p.relative_to(NBS): p.stat().st_size for p in notebooks()}
    assert sum(sizes.values()) <= MAX_TOTAL, (sum(sizes.values()), sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
    out = {p.relative_to(NBS): sum(len(json.dumps(o)) for _, o in outputs(json.loads(p.read_text()))) for p in notebooks()}
    assert sum(out.values()) <= MAX_OUTPUTS, (sum(out.values()), sorted(out.items(), key=lambda kv: -kv[1])[:5])
    figures = [(str(p.relative_to(NBS)), cid, len(o['data']['image/png'])) for p in notebooks()
               for cid, o in outputs(json.loads(p.read_text())) if 'image/png' in o.get('data', {})]
    assert all(n <= MAX_FIGURE for *_, n in figures), [f for f in figures if f[2] > MAX_FIGURE]


if __name__ == '__main__' and '--fix' in sys.argv:
    for p in notebooks():
        before = p.read_text()
        nb = clean(json.loads(before))
        after = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'
        if after != before: p.write_text(after); print(f'cleaned {p.relative_to(NBS)}: {len(before):,} → {len(after):,} bytes')
