"End-to-end tests of `lvf_eval`, run as a user runs it (a subprocess, real files), on the tiny model."
import json, subprocess, sys
import pytest
from pathlib import Path

BIN = Path(sys.executable).parent
DATA = Path(__file__).parents[1] / 'data' / 'lotka_volterra_data.h5'


def run(*args):
    return subprocess.run([str(BIN / 'lvf_eval'), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_lvf_eval_writes_metrics_and_figures(tmp_path):
    out = tmp_path / 'eval' / 'tiny.json'
    r = run('--model', 'tiny', '--data', DATA, '--split', 'test', '--n', 3, '--context-steps', 10, '--horizon', 4,
            '--batch-size', 2, '--json', out, '--quiet')
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m['n'] == 3 and m['context_steps'] == 10 and m['horizon'] == 4
    assert m['parse_success'] == 1.0                       # constrained decoding: every forecast parses
    assert len(m['mae_per_step']) == 4 and m['flops'] > 0
    for k in ('mae', 'rmse', 'mae_prey', 'mae_predator', 'rmse_prey', 'rmse_predator', 'wall_s'): assert m[k] >= 0, k
    assert set(m['baselines']) == {'persistence', 'linear', 'arima', 'ets', 'physics', 'mlp'}
    assert set(m['baselines']['physics']['context_residual']) == {'median', 'p90', 'above_1pct'}
    assert m['baselines']['physics']['context_residual']['median'] > 1e-4  # the default data: no exact fit
    assert m['model']['name'] == 'tiny' and len(m['data']['sha256']) == 64 and m['codec']['decimals'] == 2
    assert m['parameters']['batch_size'] == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ['tiny.json', 'tiny_error_distributions.png',
                                                           'tiny_error_vs_horizon.png', 'tiny_forecasts.png',
                                                           'tiny_worst.png']
    assert all('flagged' in b and b['mae_median'] <= b['mae_worst'] for b in m['baselines'].values())
    assert m['mae_median'] <= m['mae_worst'] and isinstance(m['flagged'], list)


def test_lvf_eval_underscore_spelling_and_to_end(tmp_path):
    out = tmp_path / 'e.json'
    r = run('--model', 'tiny', '--data', DATA, '--n', 2, '--context_steps', 95, '--to-end', '--no_figures', '--json', out, '--quiet')
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m['horizon'] == 5 and m['parse_success'] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ['e.json']


def test_lvf_eval_rejects_bad_inputs_before_generating(tmp_path):
    cases = [(('--data', tmp_path / 'missing.h5'), 'no such file'),
             (('--data', DATA, '--context-steps', 100), 'between 1 and 99'),
             (('--data', DATA, '--horizon', 0), 'horizon must be ≥ 1'),
             (('--data', DATA, '--context-steps', 90, '--horizon', 20), 'exceeds the 100 steps'),
             (('--data', DATA, '--adapter', tmp_path / 'nope'), 'no such adapter folder')]
    (tmp_path / 'bad.h5').write_text('not hdf5')
    cases.append((('--data', tmp_path / 'bad.h5'), 'not an HDF5 file'))
    (tmp_path / 'cut.h5').write_bytes(DATA.read_bytes()[:DATA.stat().st_size // 2])   # a copy cut short
    cases.append((('--data', tmp_path / 'cut.h5'), 'cut.h5: damaged HDF5 file, it cannot be read'))
    (tmp_path / 'adapter').mkdir(); (tmp_path / 'adapter' / 'adapter_config.json').write_text('{"rank": 8, "alpha"')
    cases.append((('--data', DATA, '--adapter', tmp_path / 'adapter'), 'adapter_config.json is damaged: not valid JSON'))
    cases.append((('--data', DATA, '--n', 'two'), "argument --n: invalid int value: 'two'"))      # argparse's own error, one line too
    cases.append((('--data', DATA, '--temperature', 0), 'need temperature > 0'))
    for args, message in cases:
        r = run('--model', 'tiny', *args, '--json', tmp_path / 'x.json', '--quiet')
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("lvf_eval: error: "), (args, r.stderr)
        assert not (tmp_path / 'x.json').exists()


def test_lvf_eval_checks_where_results_go_before_evaluating(tmp_path):
    # the --json path is checked first: a folder (or a path under a file) fails at once, not after the evaluation
    (tmp_path / 'file').write_text('')
    for target, message in [(tmp_path, 'is a folder; give a file name'), (tmp_path / 'file' / 'x.json', 'is a file, so no folder can be made')]:
        r = run('--model', 'tiny', '--data', DATA, '--n', 2, '--context-steps', 10, '--horizon', 3, '--json', target, '--quiet')
        assert r.returncode == 2 and message in r.stderr and r.stderr.count('\n') == 1, r.stderr
        assert 'MAE' not in r.stdout   # nothing was evaluated


def test_lvf_eval_refuses_an_adapter_of_another_base_model(tmp_path):
    from lvf.lora import apply_lora, save_adapter
    from lvf.model import load_model
    model, _, info = load_model('tiny')
    apply_lora(model, rank=2, alpha=4, targets=('q_proj', 'v_proj'))
    save_adapter(model, tmp_path / 'adapter', dict(info, name='another-model', weights_sha256='f' * 64))
    r = run('--model', 'tiny', '--data', DATA, '--n', 2, '--adapter', tmp_path / 'adapter', '--json', tmp_path / 'x.json', '--quiet')
    assert r.returncode == 2 and 'refusing to load it' in r.stderr and r.stderr.count('\n') == 1, r.stderr
    assert not (tmp_path / 'x.json').exists()


@pytest.mark.filterwarnings('ignore:.*is_gradient_checkpointing:FutureWarning')  # peft's call, transformers' notice
def test_lvf_eval_evaluates_an_adapter_peft_trained(tmp_path):
    # an adapter trained and saved by peft (a few steps on the tiny model), as a Hugging Face user would bring one
    import torch
    from peft import LoraConfig, get_peft_model
    from lvf.model import load_model
    model, tok, _ = load_model('tiny', dtype='float32')
    pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], lora_dropout=0.0))
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-2)
    ids = tok('1.20,0.85;1.31,0.80;1.45,0.78;1.58,0.79;', return_tensors='pt').input_ids
    for _ in range(3):
        pm(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad()
    pm.save_pretrained(tmp_path / 'peft_adapter')
    out = tmp_path / 'peft.json'
    r = run('--model', 'tiny', '--data', DATA, '--split', 'test', '--n', 2, '--context-steps', 10, '--horizon', 3,
            '--adapter', tmp_path / 'peft_adapter', '--no-figures', '--json', out, '--quiet')
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m['parse_success'] == 1.0 and m['n'] == 2 and m['mae'] >= 0
    assert m['model']['adapter']['format'] == 'peft-foreign' and m['model']['adapter']['rank'] == 4, m['model']
