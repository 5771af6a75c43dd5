"End-to-end tests of the console scripts, run as a user runs them (a subprocess, real files)."
import subprocess, sys
from pathlib import Path

import numpy as np
from lvf.core import file_sha256
from lvf.data import load_h5

BIN = Path(sys.executable).parent


def run(*args):
    return subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, timeout=300)


def test_lvf_data_writes_a_valid_reproducible_file(tmp_path):
    out = tmp_path / 'lv.h5'
    r = run('lvf_data', '--out', out, '--n', 12, '--steps', 30, '--seed', 3)
    assert r.returncode == 0, r.stderr
    trajectories, time = load_h5(out)
    assert trajectories.shape == (12, 30, 2) and time.shape == (30,)
    assert run('lvf_data', '--out', tmp_path / 'again.h5', '--n', 12, '--steps', 30, '--seed', 3).returncode == 0
    assert file_sha256(out) == file_sha256(tmp_path / 'again.h5')  # same seed, same bytes


def test_shipped_dataset_is_the_default_generator_output(tmp_path):
    # not bit for bit: numpy's exp differs in the last bit between CPUs, which can move a value on a rounding boundary
    # by one unit of its third decimal (see nbs/00_data.ipynb)
    shipped = Path(__file__).parents[1] / 'data' / 'lotka_volterra_data.h5'
    assert run('lvf_data', '--out', tmp_path / 'lv.h5').returncode == 0
    (tr, t), (tr0, t0) = load_h5(tmp_path / 'lv.h5'), load_h5(shipped)
    assert np.array_equal(t, t0)
    np.testing.assert_allclose(tr, tr0, atol=1.5e-3)
    assert (tr == tr0).mean() > 0.999


def test_lvf_data_rejects_bad_options(tmp_path):
    r = run('lvf_data', '--out', tmp_path / 'x.h5', '--n', 0)
    assert r.returncode != 0 and 'n ≥ 1' in r.stderr
    assert not (tmp_path / 'x.h5').exists()


def test_lvf_data_stats_describes_a_file_and_writes_nothing(tmp_path):
    assert run('lvf_data', '--out', tmp_path / 'm.h5', '--n', 60).returncode == 0
    r = run('lvf_data', '--stats', tmp_path / 'm.h5')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == '| statistic | field | m.h5 |' and '| physics_median | 0.0155 |' in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.h5']
    r = run('lvf_data', '--stats', tmp_path / 'missing.h5')
    assert r.returncode == 2 and 'missing.h5: no such file' in r.stderr
    # a reader that stops early (`| head`): a normal end, no error
    p = subprocess.Popen([str(BIN / 'lvf_data'), '--stats', str(tmp_path / 'm.h5')], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()
    assert p.wait(timeout=300) == 0 and p.stderr.read() == b''
