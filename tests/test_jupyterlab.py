"""JupyterLab from the project environment, for real: a server on 127.0.0.1 with a token, serving nbs/; its
contents API lists the notebooks; a kernel started through its API runs `import lvf` and a small lvf function
over the kernel's websocket channel. The server is stopped whatever happens."""
import json, os, secrets, socket, subprocess, sys, time, uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

import pytest
import websocket  # websocket-client

import lvf.data
from execnb.nbio import read_nb

ROOT = Path(__file__).parents[1]
NBS = ROOT / 'nbs'
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Lab:
    "A running JupyterLab server: its URL, token and process."
    def __init__(self, url, token, proc, log): self.url, self.token, self.proc, self.log = url, token, proc, log

    def api(self, method, path, body=None, timeout=30):
        req = Request(self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                      headers={'Authorization': f'token {self.token}', 'Content-Type': 'application/json'})
        with urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)


def _wait_ready(lab, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if lab.proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {lab.proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            if lab.api('GET', 'api/status', timeout=5)[0] == 200: return
        except (URLError, ConnectionError, OSError): time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer in {timeout} s:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lab')
    port, token = free_port(), secrets.token_hex(24)
    env = {**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp / 'runtime'), 'JUPYTER_CONFIG_DIR': str(tmp / 'config'),
           'JUPYTERLAB_WORKSPACES_DIR': str(tmp / 'workspaces'), 'IPYTHONDIR': str(tmp / 'ipython')}
    cmd = [str(BIN / 'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', '--port-retries=0',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={NBS}']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')
    log = tmp / 'lab.log'
    with open(log, 'w') as f: proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Lab(f'http://127.0.0.1:{port}/', token, proc, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        try: server.api('POST', 'api/shutdown', timeout=10)  # stops the kernels, then the server
        except Exception: pass
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try: proc.wait(timeout=10)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()


def test_server_needs_the_token(lab):
    with pytest.raises(Exception) as e: urlopen(lab.url + 'api/contents/', timeout=10)
    assert '403' in str(e.value)
    status, page = 200, urlopen(Request(lab.url + 'lab', headers={'Authorization': f'token {lab.token}'}), timeout=30).read().decode()
    assert 'JupyterLab' in page  # the JupyterLab application itself is served


def test_contents_api_lists_the_notebooks(lab):
    on_disk = {p.name for p in NBS.glob('*.ipynb')}
    status, listing = lab.api('GET', 'api/contents/')
    assert status == 200 and listing['type'] == 'directory'
    listed = {c['name'] for c in listing['content'] if c['type'] == 'notebook'}
    assert on_disk <= listed, f"not listed: {on_disk - listed}"
    assert 'experiments' in {c['name'] for c in listing['content'] if c['type'] == 'directory'}
    status, nb = lab.api('GET', 'api/contents/00_data.ipynb?content=1')
    assert nb['type'] == 'notebook' and nb['content']['cells'][0]['source'].startswith('# Data')


def test_every_notebook_has_the_project_kernel(lab):
    status, specs = lab.api('GET', 'api/kernelspecs')
    for nb in sorted(NBS.glob('**/*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        name = read_nb(nb).metadata.get('kernelspec', {}).get('name')
        assert name in specs['kernelspecs'], f"{nb.relative_to(NBS)} asks for kernel {name!r}; the server has {sorted(specs['kernelspecs'])}"


def _execute(ws, code, timeout=120):
    "Run `code` in the kernel behind websocket `ws` (Jupyter messaging protocol 5.3); its stdout, result and reply."
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    ws.send(json.dumps({
        'header': {'msg_id': msg_id, 'msg_type': 'execute_request', 'username': 'test', 'session': session,
                   'date': datetime.now(timezone.utc).isoformat(), 'version': '5.3'},
        'parent_header': {}, 'metadata': {}, 'channel': 'shell', 'buffers': [],
        'content': {'code': code, 'silent': False, 'store_history': False, 'user_expressions': {}, 'allow_stdin': False,
                    'stop_on_error': True}}))
    out, result, reply, idle, t0 = [], None, None, False, time.time()
    while not (reply and idle):
        assert time.time() - t0 < timeout, f"no reply from the kernel in {timeout} s; stdout so far: {''.join(out)}"
        m = json.loads(ws.recv())
        if m.get('parent_header', {}).get('msg_id') != msg_id: continue
        kind = m['header']['msg_type']
        if kind == 'stream': out.append(m['content']['text'])
        elif kind == 'execute_result': result = m['content']['data']['text/plain']
        elif kind == 'error': out.append('\n'.join(m['content']['traceback']))
        elif kind == 'execute_reply': reply = m['content']
        elif kind == 'status' and m['content']['execution_state'] == 'idle': idle = True
    return ''.join(out), result, reply


def test_kernel_runs_lvf(lab):
    status, kernel = lab.api('POST', 'api/kernels', {'name': 'python3', 'path': ''})
    assert status == 201, kernel
    try:
        ws_url = lab.url.replace('http', 'ws', 1) + f"api/kernels/{kernel['id']}/channels"
        ws = websocket.create_connection(ws_url, header=[f'Authorization: token {lab.token}'], timeout=120)
        try:
            out, result, reply = _execute(ws, 'import sys, lvf, lvf.data\nprint(sys.prefix)\nprint(lvf.__file__)\nlvf.data.split(10)')
        finally: ws.close()
    finally:
        assert lab.api('DELETE', f"api/kernels/{kernel['id']}")[0] == 204
    assert reply['status'] == 'ok', out
    prefix, lvf_file = out.split()
    assert Path(prefix) == Path(sys.prefix), "the kernel does not run in the project's environment"
    assert Path(lvf_file).parent == ROOT / 'lvf', "the kernel imports lvf from somewhere else than this checkout"
    assert result == repr(lvf.data.split(10))
