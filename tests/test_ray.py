"""`lvf_study --executor ray` on a two-node Ray cluster on this machine's loopback (a head and a second node, one CPU
each), through papermill on the tiny model: the same numbers as the local executor, runs on both nodes, a killed
worker survived, the budget trimming a stage. The cluster is started and stopped here; it talks to 127.0.0.1 only."""
import ipaddress, json, math, os, re, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

import psutil, pytest

BIN, ROOT = Path(sys.executable).parent, Path(__file__).parents[1]
DATA = ROOT / 'data' / 'lotka_volterra_data.h5'
# `ray` with every address on the loopback: Ray rewrites 127.0.0.1 (even an explicit --node-ip-address) to the
# machine's outward IP when it has one; these two functions are where it does
LOOPBACK_RAY = ("import sys, ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
                "s.get_node_ip_address = lambda address=None: '127.0.0.1'; from ray.scripts.scripts import main; sys.exit(main())")
# float32, and Ray workers run torch on one thread (OMP_NUM_THREADS=1) where the local run uses every core: the
# sums inside a matmul are taken in another order, which moves the last bits (float32 eps 1.2e-7) of losses and
# forecasts; a few training steps and a greedy decode amplify that to ~1e-5 at most, far below any difference
# between settings the study compares. 1e-4 relative (and absolute, for values near 0) leaves a margin of ~10×.
RTOL = 1e-4
SECONDS = re.compile(r'\b\d+(?:\.\d+)? s\b')  # '6 s against 2 s' in a report's recommendation: timings


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def our_processes(tmp, port):
    "Every process of the cluster started here: named by its temp dir or GCS port, and their children."
    me = os.getpid()
    found = {p.pid: p for p in psutil.process_iter(['cmdline'])
             if p.pid != me and any(str(tmp) in a or f'127.0.0.1:{port}' in a for a in (p.info['cmdline'] or []))}
    for p in list(found.values()):
        try: found.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.NoSuchProcess: pass
    return list(found.values())


def ray_cli(*args, env):
    r = subprocess.run([sys.executable, '-c', LOOPBACK_RAY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.fixture(scope='module')
def cluster():
    tmp = Path(tempfile.mkdtemp(prefix='lvfray-', dir='/tmp'))  # short: Ray's unix sockets live under it
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0')
    node = ['--node-ip-address', '127.0.0.1', '--num-cpus', '1', '--object-store-memory', str(200 * 2**20),
            '--temp-dir', str(tmp), '--disable-usage-stats']
    try:
        ray_cli('start', '--head', '--port', str(port), '--include-dashboard=false',
                '--ray-client-server-port', str(free_port()), *node, env=env)
        ray_cli('start', '--address', f'127.0.0.1:{port}', *node, env=env)
        yield dict(address=f'127.0.0.1:{port}', tmp=tmp, port=port)
    finally:  # stop what we started, and nothing else (not `ray stop`: it stops every Ray on the machine)
        procs = our_processes(tmp, port)
        for p in procs:
            try: p.terminate()
            except psutil.NoSuchProcess: pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            try: p.kill()
            except psutil.NoSuchProcess: pass
        psutil.wait_procs(alive, timeout=10)
        subprocess.run(['rm', '-rf', str(tmp)])


def study(out, *args, **kw):
    cmd = [str(BIN / 'lvf_study'), '--preset', 'micro', '--out', str(out), '--data', str(DATA), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=out, **kw)


def records(folder):
    return {p.parent.name: json.loads(p.read_text()) for p in Path(folder).glob('*/record.json')}


def close(a, b, path=''):
    "Assert that two results agree: numbers within RTOL, everything else equal."
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a: close(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)): close(x, y, f'{path}[{i}]')
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=RTOL) or (math.isnan(a) and math.isnan(b)), f'{path}: {a} vs {b}'
    elif isinstance(a, str):  # paths into each study differ, and so do durations written into a report's sentences
        assert SECONDS.sub('N s', a.replace('/local/', '/ray/')) == SECONDS.sub('N s', b), f'{path}: {a!r} vs {b!r}'
    else: assert a == b, f'{path}: {a!r} vs {b!r}'


# what differs between any two runs (timings), and the FLOP limit each fine-tune was given: on the cluster the runs
# of a stage share what no run has reserved (lvf.cluster), so the limit differs, though none comes near it
OMIT = ('wall_s', 'seconds', 'time', 'budget')


def comparable(result):
    "A run's result without its timings and its FLOP limit."
    if isinstance(result, dict): return {k: comparable(v) for k, v in result.items() if k not in OMIT and not k.endswith('_s')}
    if isinstance(result, list): return [comparable(v) for v in result]
    return result


def test_cluster_listens_on_the_loopback_only(cluster):
    for p in our_processes(cluster['tmp'], cluster['port']):
        try: conns = p.net_connections(kind='inet')
        except (psutil.NoSuchProcess, psutil.AccessDenied): continue
        for c in conns:
            ip = ipaddress.ip_address(c.laddr.ip)
            if c.status == psutil.CONN_LISTEN: assert (getattr(ip, 'ipv4_mapped', None) or ip).is_loopback, (p.pid, p.name(), c.laddr)


def test_ray_study_matches_the_local_one(cluster, tmp_path):
    (tmp_path / 'local').mkdir(); (tmp_path / 'ray').mkdir()
    local = study(tmp_path / 'local')
    ray = study(tmp_path / 'ray', '--executor', 'ray', '--ray-address', cluster['address'])
    out_ray, _ = ray.communicate(timeout=600); out_local, _ = local.communicate(timeout=600)
    assert ray.returncode == 0, out_ray
    assert local.returncode == 0, out_local
    a, b = records(tmp_path / 'local' / 'micro'), records(tmp_path / 'ray' / 'micro')
    # the micro plan: baseline, 3 grid runs (lr × decimals), 1 context run, final, point forecast choice, the sampled
    # paths of the fine-tuned and the untrained model, report
    assert a.keys() == b.keys() and len(a) == 10, (sorted(a), sorted(b))
    assert all(r['status'] == 'finished' for r in b.values()), {k: r['status'] for k, r in b.items()}
    for name in a:
        if name != 'report': close(comparable(a[name]['result']), comparable(b[name]['result']), name)
    ra, rb = (comparable(r['report']['result']) for r in (a, b))  # the same report; its table lists runs in the order they
    for r in (ra, rb): r['rows'].sort(key=lambda row: (row['run'], row['split']))  # started, which differs within a stage
    close(ra, rb, 'report')
    assert all(r['node'].get('ray_node_id') for r in b.values())      # each record names its node
    assert len({r['node']['ray_node_id'] for r in b.values()}) == 2   # and the runs landed on both
    grid = [b[k] for k in b if k.startswith('grid_') and k.endswith('_d2')]
    assert len(grid) == 2 and grid[0]['node']['ray_node_id'] != grid[1]['node']['ray_node_id']  # dispatched together
    ledger = [json.loads(l) for l in (tmp_path / 'ray' / 'micro' / 'flops.jsonl').read_text().splitlines()]
    assert sorted(e['experiment'] for e in ledger) == sorted(k for k in b if k != 'report')  # the driver booked each run once
    assert (tmp_path / 'ray' / 'micro' / 'report' / 'report.md').exists()


KILL_STUDY = """
import sys
from lvf.study import Study
from lvf.cluster import RayExecutor
Study('micro', out=sys.argv[1], data=sys.argv[2], executor=RayExecutor(sys.argv[3]), lrs=[1e-2], decimals=[2],
      context_lengths=[64], final_steps=400).plan()
"""


def test_a_killed_worker_is_retried_and_training_resumes(cluster, tmp_path):
    import torch
    proc = subprocess.Popen([sys.executable, '-c', KILL_STUDY, str(tmp_path), str(DATA), cluster['address']],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = None
    deadline = time.time() + 300  # kill as soon as the final run has written a checkpoint
    while time.time() < deadline and proc.poll() is None:
        run = next((d for d in tmp_path.glob('micro/final_*') if (d / 'checkpoint.pt').exists()), None)
        if run: break
        time.sleep(0.05)
    assert run, proc.communicate()[0]
    worker = psutil.Process(json.loads((run / 'record.json').read_text())['node']['pid'])
    victims = [*worker.children(recursive=True), worker]  # the papermill kernel, then the Ray worker
    for p in victims: p.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    step = torch.load(run / 'checkpoint.pt', weights_only=True)['step']
    kept = [l for l in (run / 'metrics.jsonl').read_text().splitlines() if json.loads(l)['step'] <= step]
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    recs = records(tmp_path / 'micro')
    assert all(r['status'] == 'finished' for r in recs.values()), {k: r['status'] for k, r in recs.items()}
    rec = recs[run.name]
    assert rec['attempts'] == 2 and rec['node']['pid'] != worker.pid   # Ray ran the task again, in another worker
    assert 0 < step < 400 and rec['result']['train']['steps'] == 400
    metrics = (run / 'metrics.jsonl').read_text().splitlines()
    assert metrics[:len(kept)] == kept                         # what the first attempt logged up to its checkpoint is kept as it was
    assert [json.loads(l)['step'] for l in metrics[len(kept):]][0] > step  # and training went on from there


def test_the_budget_trims_a_stage(cluster, tmp_path):
    from lvf.study import Study
    est = {r['stage']: r for r in Study('micro', out=str(tmp_path / 'est'), data=str(DATA), log=lambda *a: None).estimate()}
    budget = est['baseline']['flops'] + 1.5 * est['grid']['flops'] / 2   # the baseline and one of the two grid runs
    proc = study(tmp_path, '--budget', budget, '--executor', 'ray', '--ray-address', cluster['address'])
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    recs = records(tmp_path / 'micro')
    grid = sorted(k for k in recs if k.startswith('grid_') and k.endswith('_d2'))
    assert [recs[k]['status'] for k in ('baseline', 'grid_lr3e-3_r2_ctx64_d2', 'grid_lr1e-2_r2_ctx64_d2')] == ['finished', 'finished', 'skipped'], grid
    assert recs['grid_lr1e-2_r2_ctx64_d2']['reason'] == 'budget'
    assert recs['report']['status'] == 'finished'
    ledger = [json.loads(l) for l in (tmp_path / 'micro' / 'flops.jsonl').read_text().splitlines()]
    assert sum(e['flops'] for e in ledger) <= budget
    report = (tmp_path / 'micro' / 'report' / 'notebook.ipynb').read_text()
    assert 'grid_lr1e-2_r2_ctx64_d2: skipped' in report                  # the report says which runs were not started
    # the driver started again: finished runs are not redone, and the budget still refuses the rest
    mtimes = {k: (tmp_path / 'micro' / k / 'notebook.ipynb').stat().st_mtime for k in recs if recs[k]['status'] == 'finished' and k != 'report'}
    proc = study(tmp_path, '--budget', budget, '--executor', 'ray', '--ray-address', cluster['address'])
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert {k: (tmp_path / 'micro' / k / 'notebook.ipynb').stat().st_mtime for k in mtimes} == mtimes
    assert {k: r['status'] for k, r in records(tmp_path / 'micro').items()} == {k: r['status'] for k, r in recs.items()}


def test_executor_options_are_checked(tmp_path):
    for args, msg in [(['--executor', 'slurm'], "--executor must be 'local' or 'ray', got 'slurm'"),
                      (['--ray-address', '127.0.0.1:1'], '--ray-address and --run-resources need --executor ray'),
                      (['--executor', 'ray', '--run-resources', '{"gpus": 1}'], "unknown key(s) ['gpus']")]:
        proc = study(tmp_path, *args); out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2 and msg in out and len(out.strip().splitlines()) == 1, out
    assert not (tmp_path / 'micro').exists()   # refused before any folder was made
    # without the `ray` extra: an error that names it (ray hidden from the import system)
    code = "import sys; sys.modules['ray'] = None; from lvf.cluster import import_ray; import_ray()"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert "needs Ray, the `ray` extra of lvf" in r.stderr, r.stderr
