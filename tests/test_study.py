"End-to-end tests of `lvf_study` through papermill on the tiny model: a run, an interruption and resume, a budget."
import json, os, signal, subprocess, sys, time
from pathlib import Path

BIN, ROOT = Path(sys.executable).parent, Path(__file__).parents[1]
DATA = ROOT / 'data' / 'lotka_volterra_data.h5'


def study(tmp_path, *args, **kw):
    cmd = [str(BIN / 'lvf_study'), '--preset', 'micro', '--out', str(tmp_path), '--data', str(DATA), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, **kw)


def records(folder):
    return {p.parent.name: json.loads(p.read_text()) for p in Path(folder).glob('*/record.json')}


def test_interrupted_study_resumes_without_redoing_finished_runs(tmp_path):
    proc = study(tmp_path, start_new_session=True)
    deadline = time.time() + 300  # interrupt as soon as the first fine-tuning run has started
    while time.time() < deadline and not any(k.startswith('grid_') for k in records(tmp_path / 'micro')):
        time.sleep(0.5)
    second = study(tmp_path); out2, _ = second.communicate(timeout=300)   # one writer per folder: a second study is refused
    assert second.returncode == 1 and 'is in use by another study (pid' in out2, out2
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    first = records(tmp_path / 'micro')
    assert first['baseline']['status'] == 'finished'
    assert any(r['status'] == 'running' for k, r in first.items() if k.startswith('grid_'))
    baseline_nb = (tmp_path / 'micro' / 'baseline' / 'notebook.ipynb').stat().st_mtime

    proc = study(tmp_path); out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    final = records(tmp_path / 'micro')
    assert all(r['status'] == 'finished' for r in final.values()), {k: r['status'] for k, r in final.items()}
    assert (tmp_path / 'micro' / 'baseline' / 'notebook.ipynb').stat().st_mtime == baseline_nb  # not redone
    assert any(r['attempts'] == 2 for k, r in final.items() if k.startswith('grid_'))            # the interrupted run was retried
    assert (tmp_path / 'micro' / 'report' / 'report.md').exists()

    # run again with other data or another model: refused before any run, nothing relabelled
    report = (tmp_path / 'micro' / 'report' / 'report.md').read_bytes()
    other = tmp_path / 'other.h5'
    subprocess.run([str(BIN / 'lvf_data'), '--out', str(other), '--n', '64', '--seed', '1'], check=True, capture_output=True)
    for args, change in [(['--data', other], 'data: '), (['--model', 'embedded'], "model: 'tiny' → 'embedded'")]:
        cmd = [str(BIN / 'lvf_study'), '--preset', 'micro', '--out', str(tmp_path), '--data', str(DATA), *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert r.returncode == 2 and 'holds a study started with other inputs' in r.stderr and change in r.stderr, r.stderr
    assert (tmp_path / 'micro' / 'report' / 'report.md').read_bytes() == report
    assert records(tmp_path / 'micro') == final


def test_study_refuses_to_exceed_a_tiny_budget(tmp_path):
    proc = study(tmp_path, '--budget', '1e6'); out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2, out   # nothing was run: not a success
    assert out.rstrip().splitlines()[-1].startswith('lvf_study: error: the budget 1e+06 FLOPs pays for no run (skipped: baseline'), out
    recs = records(tmp_path / 'micro')
    assert recs['baseline']['status'] == 'skipped' and recs['baseline']['reason'] == 'budget'
    ledger = [json.loads(l) for l in (tmp_path / 'micro' / 'flops.jsonl').read_text().splitlines()] if (tmp_path / 'micro' / 'flops.jsonl').exists() else []
    assert sum(e['flops'] for e in ledger) <= 1e6
