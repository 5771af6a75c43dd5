"Every console script, run as a user runs it, answers bad input with one line `lvf_<tool>: error: …` and exit status 2."
import subprocess, sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DATA = Path(__file__).parents[1] / 'data' / 'lotka_volterra_data.h5'


def cases(tmp):
    "(tool, arguments, what the error line must say): malformed options (argparse's), values out of range, bad files."
    (tmp / 'cut.h5').write_bytes(DATA.read_bytes()[:DATA.stat().st_size // 2])           # a copy cut short
    (tmp / 'd.h5').write_bytes(DATA.read_bytes())                                       # a user's data file
    (tmp / 'micro' / 'baseline').mkdir(parents=True)
    (tmp / 'micro' / 'baseline' / 'record.json').write_text('{"name": "baseline", "sta')  # a damaged record
    return [('lvf_data', ['--n', 'many'], "argument --n: invalid int value: 'many'"),
            ('lvf_data', ['--out', tmp / 'x.h5', '--seed', '-1'], 'seed'),
            ('lvf_train', ['--lr', 'abc'], "argument --lr: invalid float value: 'abc'"),
            ('lvf_train', ['--model', 'tiny', '--decimals', 9, '--out', tmp / 'run'], 'decimals must be 1 to 6, got 9'),
            ('lvf_eval', ['--lrr', 1], 'unrecognized arguments: --lrr 1'),
            ('lvf_eval', ['--model', 'tiny', '--data', tmp / 'cut.h5'], 'cut.h5: damaged HDF5 file'),
            ('lvf_forecast', ['--model', 'tiny', '--data', DATA, '--out', tmp], 'is a folder; give a file name'),
            ('lvf_forecast', ['--model', 'tiny', '--data', DATA, '--out', tmp / 'f.h5', '--horizon', 0], 'horizon must be ≥ 1'),
            ('lvf_forecast', ['--model', 'tiny', '--data', tmp / 'd.h5', '--out', tmp / 'd.h5'], 'd.h5 is the input file'),
            ('lvf_eval', ['--model', 'tiny', '--data', tmp / 'd.h5', '--json', tmp / '.' / 'd.h5'], 'would destroy it'),
            ('lvf_study', ['--preset', 'nope'], "unknown preset 'nope'"),
            ('lvf_study', ['--preset', 'micro', '--data', DATA, '--budget', -5], 'study option budget must be a number of FLOPs > 0'),
            ('lvf_study', ['--preset', 'micro', '--data', tmp / 'cut.h5'], 'cut.h5: damaged HDF5 file'),
            ('lvf_study', ['--preset', 'micro', '--data', DATA, '--out', tmp], 'baseline/record.json is damaged: not valid JSON'),
            ('lvf_flops', ['--batch', 'four'], "argument --batch: invalid int value: 'four'"),
            ('lvf_flops', ['--convention', 'kaplan'], "unknown convention 'kaplan'"),
            ('lvf_bench', ['no-such-benchmark'], "no benchmark 'no-such-benchmark'"),
            ('lvf_export', [tmp / 'nope', '--out', tmp / 'm'], 'nope: no such adapter folder'),
            ('lvf_export', [tmp], 'give --out (a merged model folder), --gguf (a GGUF LoRA file), or both'),
            ('lvf_docs', ['--nope'], 'unrecognized arguments: --nope'),
            ('lvf_docs', [], 'is not in one (no settings.ini here or above): run it in the repository')]  # cwd: outside


def test_every_console_script_reports_bad_input_on_one_line(tmp_path):
    for tool, args, message in cases(tmp_path):
        r = subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert r.returncode == 2, (tool, args, r.returncode, r.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith(f'{tool}: error: ') and message in lines[0], (tool, args, r.stderr[-2000:])
    assert (tmp_path / 'd.h5').read_bytes() == DATA.read_bytes()  # an output named like an input destroyed nothing


@pytest.mark.parametrize('tool', ['lvf_data', 'lvf_train', 'lvf_eval', 'lvf_forecast', 'lvf_study', 'lvf_flops', 'lvf_bench', 'lvf_docs', 'lvf_export'])
def test_every_console_script_has_help(tool):
    r = subprocess.run([str(BIN / tool), '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'usage:' in r.stdout, r.stderr
