"""A full disk or a read-only file system, for real (a small tmpfs, so root only): one line naming the file and the cause,
the documented exit status, nothing half-written, and the run goes on once there is room."""
import os, subprocess, sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DATA = Path(__file__).parents[1] / 'data' / 'lotka_volterra_data.h5'
TINY = ['--model', 'tiny', '--data', DATA, '--context-length', 64, '--stride', 32, '--max-train-trajectories', 4,
        '--batch-size', 2, '--eval-every', 2, '--checkpoint-every', 2, '--eval-windows', 2, '--steps', 4]


@pytest.fixture
def disk(tmp_path):
    "A 2 MB file system of its own, unmounted afterwards."
    mnt = tmp_path / 'disk'; mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mnt)],
                                           capture_output=True).returncode:
        pytest.skip('needs root and tmpfs to make a small disk')
    yield mnt
    subprocess.run(['umount', '-l', str(mnt)])


def fill(mnt, leave:int) -> Path:
    "Fill `mnt` up to `leave` free bytes with one file; deleting it frees the space."
    st = os.statvfs(mnt); free = st.f_bavail * st.f_frsize
    (f := mnt / 'filler').write_bytes(b'\0' * max(0, free - leave))
    return f


def run(tool, *args):
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=300)


def error_line(r, tool, code):
    assert r.returncode == code and 'Traceback' not in r.stderr, (r.returncode, r.stderr[-2000:])
    lines = [l for l in r.stderr.splitlines() if l.startswith(f'{tool}: error')]
    assert len(lines) == 1, r.stderr[-2000:]
    return lines[0]


def test_a_full_disk_is_one_line_and_nothing_half_written(disk):
    fill(disk, 8 << 10)
    line = error_line(run('lvf_data', '--out', disk / 'd.h5', '--n', 64, '--seed', 1), 'lvf_data', 1)  # not a crash (139)
    assert line == f'lvf_data: error: {disk / "d.h5"}: no space left on the device (free some space, then run the same command again)'
    assert sorted(p.name for p in disk.iterdir()) == ['filler']


def test_training_stopped_by_a_full_disk_resumes_once_there_is_room(disk):
    filler = fill(disk, 48 << 10)  # room for the config and the logs, not for a checkpoint
    out = disk / 'run'
    line = error_line(run('lvf_train', *TINY, '--out', out), 'lvf_train', 1)
    assert f'{out / "checkpoint.pt"}: no space left on the device (free some space, then run the same command with --resume' in line
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]  # no temporary file left behind
    filler.unlink()
    r = run('lvf_train', *TINY, '--out', out, '--resume')
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / 'adapter').is_dir() and (out / 'summary.json').exists()


def test_a_read_only_file_system_is_a_bad_path(disk):
    subprocess.run(['mount', '-o', 'remount,ro', str(disk)], check=True)
    line = error_line(run('lvf_data', '--out', disk / 'd.h5', '--n', 8), 'lvf_data', 2)
    assert 'd.h5' in line and ('read-only' in line or 'not writable' in line), line
