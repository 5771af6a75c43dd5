"The benchmark notebooks of nbs/benchmarks run end to end (papermill, the tiny model, the smallest shapes) and write the results issue 15 asks for."
import json

import papermill as pm
import pytest

from lvf.bench import BENCHMARKS, benchmarks_dir, machine_name

SMALL = {  # the smallest parameters that still exercise every code path
    'limits': dict(model='tiny', tokens=[32, 2, 1], repeats=1, min_time=0.001, copy_bytes=1 << 22, decode_batches=[1, 2],
                   context=40, train_shapes=[[2, 24]], prefill_tokens=30),
    'flops': dict(model='tiny', contexts=[12, 20], batch=2, gen_batch=2, new_tokens=3),
    'step': dict(model='tiny', shapes=[[2, 24]], repeats=1),
    'forecast': dict(model='tiny', n=2, n_batch1=1, batch_sizes=[1, 2], context_steps=3, horizon=2, compiled_batch_sizes=[2],
                     sweep_batches=[1, 2], sweep_steps=2, stage_n=4, stage_batch=2),
    'summary': dict(model='tiny'),
}
KEYS = {
    'limits': {'limits': {'matmul_flops_fp32', 'matmul_flops_bf16', 'bandwidth_bytes_s'}},
    'flops': {'rows': None, 'exact': None, 'worst_ratio': None},
    'step': {'rows': None},
    'forecast': {'rows': None, 'ratios': {'forecast_vs_hf_generate', 'forecast_vs_llama_cpp'}, 'utilisation': {'decode_bandwidth', 'prefill'}},
    'summary': {'machine': {'cpu_flags', 'cores', 'dtype', 'torch', 'transformers'},
                'limits': {'matmul_flops_fp32', 'matmul_flops_bf16', 'bandwidth_bytes_s'},
                'ratios': {'forecast_vs_hf_generate', 'forecast_vs_llama_cpp', 'train_step_vs_peft', 'alphabet_vs_full_head_step',
                           'flops_analytic_vs_counter'},
                'utilisation': {'train_step', 'prefill', 'decode_bandwidth'}},
}


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    "Run every benchmark in `lvf_bench all`'s order into one temporary results folder; {name: its JSON}."
    out = tmp_path_factory.mktemp('results')
    for name in BENCHMARKS:
        pm.execute_notebook(str(benchmarks_dir() / f'{name}.ipynb'), str(out / f'{name}.ipynb'), parameters=dict(SMALL[name], out=str(out)),
                            cwd=str(benchmarks_dir()), kernel_name='python3', progress_bar=False)
    return {name: json.loads((out / f'{name}-{machine_name()}.json').read_text()) for name in BENCHMARKS}


@pytest.mark.parametrize('name', BENCHMARKS)
def test_benchmark_writes_its_keys(results, name):
    r = results[name]
    assert r['benchmark'] == name and r['machine']['cores'] >= 1
    for key, sub in KEYS[name].items():
        assert key in r, f'{name}: no {key!r}'
        if sub: assert sub <= set(r[key]), f'{name}.{key} lacks {sub - set(r[key])}'


def test_numbers_hang_together(results):
    lim, fl, st, fc, sm = (results[k] for k in BENCHMARKS)
    assert lim['limits']['matmul_flops_fp32'] > 0 and lim['limits']['bandwidth_bytes_s'] > 0
    assert fl['exact'] and all(r['analytic_matmul'] == r['counted'] for r in fl['rows'])  # FlopCounterMode agrees at every shape
    rows = st['rows']
    assert {'dtype', 'head', 'batch', 'tokens', 'step_s'} <= set(rows[0])  # what lvf.study._step_seconds reads
    peft = [r for r in rows if r['impl'] == 'peft']
    assert peft and all(r['head'] == 'full' for r in peft)
    for p in peft:  # the same model, batch and adapter (B = 0): the same first loss as lvf's full head
        lvf = next(r for r in rows if r['impl'] == 'lvf' and r['head'] == 'full' and (r['dtype'], r['tokens']) == (p['dtype'], p['tokens']))
        assert lvf['first_loss'] == pytest.approx(p['first_loss'], rel=1e-3) and lvf['vs_peft'] > 0
    comp = [r for r in rows if r['impl'] == 'lvf_compiled']
    assert comp and all(r['head'] == 'alphabet' and r['vs_eager'] > 0 and r['warmup_s'] > 0 for r in comp)
    for c in comp:  # the compiled step computes the eager decoder's loss at the same weights, within bf16's rounding
        assert c['first_loss'] == pytest.approx(c['eager_loss'], rel=1e-2 if c['dtype'] == 'bfloat16' else 1e-4)
    lvf_engines = {'lvf_hf', 'lvf', 'lvf_int8', 'lvf_compiled', 'lvf_compiled_int8'}
    assert {r['engine'] for r in fc['rows']} == lvf_engines | {'hf'}  # llama.cpp runs on the embedded GGUF only
    assert fc['vs_today'] and all(d['forecasts_ratio'] > 0 for d in fc['vs_today'].values())  # each beside today's path
    assert set(fc['compile_s']) == {'lvf_compiled batch 2', 'lvf_compiled_int8 batch 2'}     # the one-time cost, stated
    assert {(r['weights'], r['batch']) for r in fc['sweep']} == {(w, b) for w in ('model', 'int8') for b in (1, 2)}
    assert fc['best_batch'] in (1, 2) and fc['stage']['int8_minus_float_mae']['n'] == 4
    assert {r['engine'] for r in fc['stage_rows']} == {'lvf_hf', 'lvf', 'lvf_int8'}
    if fc['params']['dtype'] == 'float32':  # the static step computes the model's forward pass: the same forecasts
        mae = {r['engine']: r['mae'] for r in fc['stage_rows']}
        assert mae['lvf'] == mae['lvf_hf'], mae
    assert fc['llama_cpp']['note'] and fc['ratios']['forecast_vs_hf_generate'] > 0
    assert sm['ratios']['flops_analytic_vs_counter'] == 1.0 and sm['missing'] == []
    assert sm['ratios']['train_step_vs_peft'] == next(r['vs_peft'] for r in rows if r['impl'] == 'lvf' and r['head'] == 'full'
                                                      and r['dtype'] == sm['machine']['dtype'])
