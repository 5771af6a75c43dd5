"""lvf installed as a user installs it from a wheel (`pip install .`, no `-e`): the package carries the notebooks
papermill runs, so `lvf_study` works from any folder, far from the checkout."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
DATA = ROOT / 'data' / 'lotka_volterra_data.h5'


def test_installed_package_runs_the_micro_study_from_another_folder(tmp_path):
    site = tmp_path / 'site'   # a plain (non-editable) install of this checkout; its dependencies are this venv's
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--target', str(site), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in (site / 'lvf' / 'experiments').glob('*.ipynb')} >= {'baseline.ipynb', 'finetune.ipynb', 'report.ipynb'}
    env = dict(os.environ, PYTHONPATH=str(site))   # the installed copy comes first; papermill's kernels inherit it
    where = subprocess.run([sys.executable, '-c', 'import lvf.runs as s; print(s.lvf.__file__); print(s.experiments_dir())'],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120).stdout.split()
    assert where == [str(site / 'lvf' / '__init__.py'), str(site / 'lvf' / 'experiments')], where
    work = tmp_path / 'elsewhere'; work.mkdir()
    r = subprocess.run([sys.executable, '-c', 'from lvf.study import lvf_study_cli; lvf_study_cli()', '--preset', 'micro',
                        '--out', 'runs', '--data', str(DATA)], capture_output=True, text=True, env=env, cwd=work, timeout=900)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    records = {p.parent.name: json.loads(p.read_text()) for p in (work / 'runs' / 'micro').glob('*/record.json')}
    assert records and all(rec['status'] == 'finished' for rec in records.values()), {k: v['status'] for k, v in records.items()}
    assert (work / 'runs' / 'micro' / 'report' / 'report.md').exists()
