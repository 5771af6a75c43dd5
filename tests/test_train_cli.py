"`lvf_train` run as a user runs it (a subprocess, real files, the tiny model): errors are one line with an exit status."
import json, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent
DATA = Path(__file__).parents[1] / 'data' / 'lotka_volterra_data.h5'
TINY = ['--model', 'tiny', '--data', DATA, '--context-length', 64, '--stride', 32, '--max-train-trajectories', 4,
        '--batch-size', 2, '--eval-every', 2, '--checkpoint-every', 2, '--eval-windows', 2]


def lvf_train(*args):
    return subprocess.run([str(BIN / 'lvf_train'), *map(str, args)], capture_output=True, text=True, timeout=300)


def one_line_error(r, code):
    "The error line (stderr's last line; a progress bar may come before it), after checking the exit status and that no traceback came."
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('lvf_train: error: ') and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert sum(l.startswith('lvf_train: error') for l in r.stderr.splitlines()) == 1
    return last


def test_bad_options_are_one_line_usage_errors_before_any_write(tmp_path):
    for opt, value, msg in [('--decimals', 0, 'decimals must be 1 to 6, got 0'), ('--alpha', -16, 'alpha must be > 0'),
                            ('--max-train-trajectories', 0, 'max_train_trajectories must be ≥ 1'),
                            ('--eval-every', 0, 'eval_every, checkpoint_every and eval_windows must be ≥ 1')]:
        out = tmp_path / opt.strip('-')
        line = one_line_error(lvf_train(*TINY, '--steps', 2, opt, value, '--out', out), 2)
        assert msg in line, line
        assert not out.exists()


def test_divergence_exits_nonzero_and_says_so(tmp_path):
    for bad in ('inf', 'nan', '1e999'):  # a non-finite option is refused before any work
        line = one_line_error(lvf_train(*TINY, '--steps', 4, f'--lr={bad}', '--out', tmp_path / bad), 2)
        assert f"argument --lr: '{bad}' is not a finite number" in line and not (tmp_path / bad).exists(), line
    out = tmp_path / 'huge'
    line = one_line_error(lvf_train(*TINY, '--steps', 4, '--alpha', '1e38', '--out', out), 1)  # finite, but B·A·α/r overflows
    assert 'TrainingDiverged' in line and 'diverged: ' in line and 'no checkpoint was written' in line, line
    summary = json.loads((out / 'summary.json').read_text(), parse_constant=lambda c: 1 / 0)  # strict JSON
    assert summary['stopped'].startswith('diverged') and not (out / 'adapter').exists()
    line = one_line_error(lvf_train(*TINY, '--steps', 4, '--alpha', '1e38', '--out', out), 2)  # not called finished
    assert f"{out} holds a run that diverged: " in line, line


def test_resume_with_changed_options_refuses_before_writing(tmp_path):
    out = tmp_path / 'run'
    assert lvf_train(*TINY, '--steps', 2, '--lr', 1e-3, '--out', out).returncode == 0
    state = lambda: {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != '.lock'}  # .lock: who last held the folder
    before = state()
    line = one_line_error(lvf_train(*TINY, '--steps', 2, '--lr', 1e-2, '--out', out, '--resume'), 2)
    assert 'lr: 0.001 → 0.01' in line, line
    assert state() == before
    line = one_line_error(lvf_train(*TINY, '--steps', 2, '--lr', 1e-3, '--out', out), 2)   # no --resume: a finished run is kept
    assert 'holds a finished run' in line and '--overwrite' in line, line
    assert lvf_train(*TINY, '--steps', 2, '--lr', 1e-3, '--out', out, '--resume').returncode == 0
