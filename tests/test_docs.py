"""The docs site as a user gets it: `lvf_docs` run as a command, the pages checked as files and in a real browser.

The browser is headless Chromium (Debian's `chromium`). When it is missing, the browser tests install it with
apt-get if they run as root; otherwise they are skipped, saying so. Screenshots go to test-output/ for a person.
"""
import base64, html, importlib, inspect, json, os, queue, re, shutil, signal, subprocess, sys, tempfile, threading, time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from execnb.nbio import read_nb
from nbdev.process import extract_directives

import lvf
from lvf.docs import ci_test_command, doc_url, page_path, readme_md, site_notebooks

ROOT = Path(__file__).parents[1]
NBS = ROOT / 'nbs'
BIN = Path(sys.executable).parent
SHOTS = ROOT / 'test-output'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--hide-scrollbars']


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The project's site, built by `lvf_docs` as a user builds it, and the notebooks it was built from."
    notebooks = site_notebooks(NBS)  # before the build: other notebooks may appear while it runs
    out = tmp_path_factory.mktemp('site') / '_docs'
    r = subprocess.run([str(BIN / 'lvf_docs'), '--out', str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"open {out / 'index.html'}" in r.stdout
    return out, notebooks


def pages_of(site):
    out, notebooks = site
    return {page_path(nb): (out / page_path(nb)).read_text(encoding='utf-8') for nb in notebooks}


def sidebar_links(page_html):
    nav = re.search(r'<nav class="lvf-sidebar">(.*?)</nav>', page_html, re.S)[1]
    return re.findall(r'<li(?: class="active")?><a href="([^"#]+)">', nav)


def main_of(page_html): return page_html.partition('<main')[2]


# ---- the site as files ---------------------------------------------------------------------------------------

def test_one_page_per_notebook_in_sidebar_order(site):
    out, notebooks = site
    pages = [page_path(nb) for nb in notebooks]
    assert pages[:3] == ['index.html', 'core.html', 'data.html']  # the index is the home page, then the notebooks in order
    for nb in NBS.glob('[0-9]*.ipynb'):
        assert Path(nb.name) in notebooks, f"{nb.name} has no page"
    for nb in (NBS / 'experiments').glob('*.ipynb'):
        ran = any(c.get('outputs') for c in read_nb(nb).cells if c.cell_type == 'code')
        assert (Path('experiments', nb.name) in notebooks) == ran, f"experiments/{nb.name}: a page only when it has outputs"
    for page, text in pages_of(site).items():
        root = '../' * page.count('/')
        assert sidebar_links(text) == [root + p for p in pages], page
        assert (out / page).exists()
    assert (out / 'lab.css').stat().st_size > 100_000 and (out / 'site.css').exists()


def test_every_link_resolves(site):
    out, _ = site
    ids = {}
    for page, text in pages_of(site).items():
        for href in re.findall(r'<a\b[^>]*?\shref="([^"]*)"', text) + re.findall(r'<img\b[^>]*?\ssrc="([^"]*)"', text):
            href = html.unescape(href)
            if re.match(r'^([a-z][\w+.-]*:|//)', href, re.I): continue  # other sites
            assert doc_url() not in href, f"{page}: a link to the published site: {href}"
            path, _, frag = href.partition('#')
            target = (out / page).parent / unquote(path) if path else out / page
            if path.startswith('../') and not target.resolve().is_relative_to(out): continue  # e.g. ../data/ in the repo
            assert target.is_file(), f"{page}: broken link {href}"
            if frag and target.suffix == '.html':
                key = target.resolve()
                if key not in ids: ids[key] = {html.unescape(i) for i in re.findall(r'\sid="([^"]+)"', target.read_text(encoding='utf-8'))}
                assert frag in ids[key] or unquote(frag) in ids[key], f"{page}: no #{frag} in {path or page}"


def _documented(module):
    "Functions and classes of lvf `module` that nbdev documents: those in `__all__`, defined in it."
    mod = importlib.import_module(f'lvf.{module}')
    return [n for n in getattr(mod, '__all__', []) if (inspect.isfunction(o := getattr(mod, n)) or inspect.isclass(o))
            and getattr(o, '__module__', '') == mod.__name__]


def test_api_docs_for_every_exported_function(site):
    pages = pages_of(site)
    for nb in NBS.glob('[0-9]*.ipynb'):
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', '\n'.join(c.source for c in read_nb(nb).cells if c.cell_type == 'code'), re.M)
        if not m or not (ROOT / 'lvf' / f'{m[1]}.py').exists(): continue
        page = pages[page_path(nb.name)]
        missing = [n for n in _documented(m[1]) if f'<h3 id="{n.lower()}">' not in page]
        assert not missing, f"{page_path(nb.name)}: no API docs for {missing}"
    from lvf.data import load_h5  # one known function in detail: name, signature, docstring
    data = main_of(pages['data.html'])
    section = data[data.index('<h3 id="load_h5">'):][:3000]
    text = html.unescape(re.sub(r'<[^>]+>', '', section))
    assert all(p in text for p in inspect.signature(load_h5).parameters)
    assert load_h5.__doc__.replace('`', '') in text


def _visible_image_outputs(nb_path):
    "Base64 images saved in the outputs of `nb_path`'s cells that the docs show."
    res = []
    for c in read_nb(nb_path).cells:
        if c.cell_type != 'code': continue
        d = extract_directives(c)
        if d.keys() & {'hide', 'export', 'exporti', 'default_exp'} or d.get('include:') == ['false'] or d.get('output:') == ['false']: continue
        res += [''.join(o['data'][m]) for o in c.get('outputs', []) for m in ('image/png', 'image/jpeg') if m in o.get('data', {})]
    return res


def test_figures_are_embedded(site):
    out, notebooks = site
    pages = pages_of(site)
    for nb in notebooks:
        for img in _visible_image_outputs(NBS / nb):
            assert f'base64,{img.strip()[:200]}' in pages[page_path(nb)].replace('\n', ''), f"{nb}: a figure is missing"


def test_hidden_cells_and_directives_are_gone(site):
    for page, text in pages_of(site).items():
        code = ''.join(re.findall(r'<div class="jp-CodeMirrorEditor.*?</div></div>', main_of(text), re.S))
        assert '<span class="c1">#|' not in code, f"{page}: a directive is shown"
        assert '<span class="nn">nbdev.showdoc</span>' not in code, f"{page}: the hidden import cell is shown"
        assert '<span class="n">nbdev_export</span>' not in code, f"{page}: the hidden export cell is shown"
        api_docs = ''.join(re.findall(r'jp-OutputArea-output[^"]*" data-mime-type="text/markdown">(.*?)</div>', text, re.S))
        assert '{target=' not in api_docs, f"{page}: Quarto attribute syntax left in the API docs"


# ---- README ---------------------------------------------------------------------------------------------------

def test_readme_is_generated_from_the_index_notebook():
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    assert ci_test_command(readme), "README.md has no test command for .ci/run"
    assert readme_md(NBS / 'index.ipynb', readme_dir=ROOT)[0] == readme, "README.md is out of date: run `lvf_docs --readme`"
    images = re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', readme)
    assert images and all((ROOT / i).is_file() for i in images), images  # its figures are files of the repository


def test_lvf_docs_readme_command(tmp_path):
    r = subprocess.run([str(BIN / 'lvf_docs'), '--readme', '--out', str(tmp_path / 'README.md')], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'README.md').read_text(encoding='utf-8') == readme_md(NBS / 'index.ipynb', readme_dir=tmp_path)[0]


# ---- the site in a real browser --------------------------------------------------------------------------------

@pytest.fixture(scope='session')
def chromium():
    "Headless Chromium: found, or installed with apt-get when running as root; otherwise the browser tests skip."
    exe = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
    if exe: return exe
    if not (hasattr(os, 'geteuid') and os.geteuid() == 0 and shutil.which('apt-get')):
        pytest.skip("headless Chromium is not installed (Debian: `apt-get install chromium`); run as root to let the test install it")
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    for cmd in (['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', 'chromium']):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if r.returncode: pytest.skip(f"could not install Chromium ({' '.join(cmd)}): {r.stderr[-500:]}")
    return shutil.which('chromium') or pytest.skip("apt-get installed chromium but it is not on PATH")


def run_chromium(exe, *args, timeout=300):
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:  # Chromium's children may outlive it briefly
        r = subprocess.run([exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args], capture_output=True, text=True, timeout=timeout)
    return r


# The checks run inside the browser: each page is loaded in an iframe, its images decoded, and every link on it to
# the site fetched, with the target's #fragment looked up. The page then POSTs its result to the test's server.
# The test waits for that POST in real time: Chromium's --virtual-time-budget gave up early on a loaded machine.
HARNESS = r"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>lvf docs check</title></head>
<body><pre id="result">pending</pre><iframe id="page" width="1280" height="900"></iframe>
<script>
const load = (f, src) => new Promise(ok => { f.onload = ok; f.src = src; });
const docs = {};
const getDoc = async (path) => {
  if (!(path in docs)) {
    const r = await fetch(path);
    docs[path] = r.ok ? new DOMParser().parseFromString(await r.text(), 'text/html') : null;
  }
  return docs[path];
};
const hasId = async (url) => {
  const [path, frag] = url.split('#');
  const doc = await getDoc(path);
  return doc !== null && (!frag || doc.getElementById(frag) !== null || doc.getElementById(decodeURIComponent(frag)) !== null);
};
async function check(page) {
  const f = document.getElementById('page');
  await load(f, page);
  const d = f.contentDocument, origin = location.origin;
  const imgs = [...d.querySelectorAll('main img')];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const local = [...new Set([...d.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith(origin)))];
  const broken = [];
  for (const h of local) if (!(await hasId(h))) broken.push(h.slice(origin.length));
  return {
    title: d.title,
    sidebar: [...d.querySelectorAll('nav.lvf-sidebar li > a')].filter(a => !a.getAttribute('href').startsWith('#'))
               .map(a => [a.textContent, new URL(a.href).pathname]),
    active: [...d.querySelectorAll('nav.lvf-sidebar li.active > a')].map(a => a.textContent),
    api: [...d.querySelectorAll('main h3[id]')].map(h => h.id),
    images: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
    links: local.length, broken,
    height: d.documentElement.scrollHeight,
    text: d.querySelector('main').innerText,
  };
}
(async () => {
  const res = {};
  try { for (const p of new URLSearchParams(location.search).get('pages').split(',')) res[p] = await check(p); }
  catch (e) { res.error = String(e); }
  document.getElementById('result').textContent = 'done';
  await fetch('/_result', {method: 'POST', body: JSON.stringify(res)});
})();
</script></body></html>
"""


class Served(str):
    "The site's URL, with the queue the check page's results arrive on."
    def __new__(cls, url, results):
        self = super().__new__(cls, url); self.results = results; return self


class _Handler(SimpleHTTPRequestHandler):
    "Serves the site quietly; a POST to /_result hands the check page's result to the waiting test."
    def log_message(self, *args): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(204); self.end_headers()
        if self.path == '/_result': self.server.results.put(body.decode('utf-8'))


@pytest.fixture(scope='module')
def served(site):
    "The site on a local HTTP server (as a user's browser or GitHub Pages serves it), with the check page added."
    out, _ = site
    (out / '_check.html').write_text(HARNESS, encoding='utf-8')
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(_Handler, directory=str(out)))
    server.results = queue.Queue()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try: yield Served(f'http://127.0.0.1:{server.server_address[1]}/', server.results)
    finally:
        server.shutdown(); server.server_close()
        (out / '_check.html').unlink()


def browser_check(chromium, served, pages, timeout=600):
    "Run the check page on `pages` in headless Chromium; wait (real time, up to `timeout` s) for the result it posts back."
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile, tempfile.TemporaryFile('w+') as err:  # a file: a full stderr pipe would stall Chromium
        # --remote-debugging-port keeps headless Chromium running until the test closes it; nothing connects to it.
        # Its own process group, so that closing it stops its renderer and GPU processes too (they write to the profile)
        proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', '--remote-debugging-port=0',
                                 f"{served}_check.html?pages={','.join(pages)}"], stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        def stderr_tail(): err.seek(0); return err.read()[-1500:]
        try:
            deadline = time.monotonic() + timeout
            while True:
                try: body = served.results.get(timeout=1); break
                except queue.Empty: pass
                if proc.poll() is not None: pytest.fail(f"Chromium exited ({proc.returncode}) before the check page finished: {stderr_tail()}")
                if time.monotonic() > deadline: pytest.fail(f"the check page did not finish in {timeout} s in Chromium: {stderr_tail()}")
        finally:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    res = json.loads(body)
    assert 'error' not in res, res['error']
    return res


def screenshot(chromium, url, name, height=1000):
    SHOTS.mkdir(exist_ok=True)
    r = run_chromium(chromium, f'--window-size=1280,{height}', '--virtual-time-budget=5000', f'--screenshot={SHOTS / name}', url)
    assert (SHOTS / name).stat().st_size > 10_000, r.stderr[-1500:]


def test_site_in_browser(site, served, chromium):
    _, notebooks = site
    pages = [page_path(nb) for nb in notebooks]
    res = browser_check(chromium, served, pages)
    for page in pages:
        p = res[page]
        assert p['broken'] == [], f"{page}: broken links {p['broken']}"
        assert [u for _, u in p['sidebar']] == ['/' + q for q in pages], f"{page}: sidebar out of order"
        assert len(p['active']) == 1, page
    assert res['index.html']['active'] == ['Home'] and res['index.html']['links'] > len(pages)
    data = res['data.html']
    assert data['title'].startswith('Data') and data['active'] == ['Data']
    assert 'load_h5' in data['api'] and 'Load and validate' in data['text']
    screenshot(chromium, served + 'index.html', 'docs_home.png')
    screenshot(chromium, served + 'data.html', 'docs_data.png')
    screenshot(chromium, served + 'data.html', 'docs_data_full.png', height=min(data['height'], 16000))


def test_figures_in_browser(site, served, chromium):
    out, notebooks = site
    with_figures = [page_path(nb) for nb in notebooks if _visible_image_outputs(NBS / nb)]
    if not with_figures:
        pytest.skip("no notebook in nbs/ has a saved figure: notebooks are committed without outputs "
                    "(run them: `jupyter nbconvert --to notebook --execute --inplace nbs/00_data.ipynb`)")
    res = browser_check(chromium, served, with_figures)
    for page in with_figures:
        assert res[page]['images'] and all(w > 100 and h > 100 for w, h in res[page]['images']), f"{page}: {res[page]['images']}"
    screenshot(chromium, served + with_figures[0], 'docs_figure_page.png', height=min(res[with_figures[0]]['height'], 16000))
