"""The package reads like code written by hand: every line of `lvf/*.py` within 120 characters, except what nbdev
generates (`_modidx.py` and the `__all__` lists). The lines come from the notebooks' `#| export` cells, so a long one is
fixed there, then `nbdev_export`."""
from pathlib import Path

LVF = Path(__file__).parents[1] / 'lvf'
MAX_LINE = 120


def test_exported_lines_fit():
    long = [f'{p.name}:{i}: {len(l)} characters' for p in sorted(LVF.glob('*.py')) if p.name != '_modidx.py'
            for i, l in enumerate(p.read_text(encoding='utf-8').splitlines(), 1)
            if len(l) > MAX_LINE and not l.startswith('__all__')]
    assert not long, long
