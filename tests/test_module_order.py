"The README's promise: each module imports only the modules above it in the notebook table, at any depth of the code."
import ast, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table_order() -> list[str]:
    "The lvf modules in the README's notebook table, top to bottom."
    return re.findall(r'^\| `\d\d_\w+` \| `lvf\.(\w+)` \|', (ROOT / 'README.md').read_text(), re.M)


def lvf_imports(module:str) -> set[str]:
    "Every lvf module `lvf/<module>.py` imports, at the top or inside a function (`from .x`, `from lvf.x`, `import lvf.x`)."
    found = set()
    for node in ast.walk(ast.parse((ROOT / 'lvf' / f'{module}.py').read_text())):
        if isinstance(node, ast.ImportFrom):
            name = ('lvf.' + (node.module or '')) if node.level == 1 else (node.module or '')
            if name in ('lvf', 'lvf.'): found |= {a.name for a in node.names}
            elif name.startswith('lvf.'): found.add(name.split('.')[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('lvf.')}
    return found - {module}


def test_every_module_is_in_the_table():
    modules = {p.stem for p in (ROOT / 'lvf').glob('*.py')} - {'__init__', '_modidx'}
    assert sorted(table_order()) == sorted(modules)


def test_a_module_imports_only_the_ones_above_it():
    order = table_order()
    wrong = {m: sorted(i for i in lvf_imports(m) if order.index(i) > order.index(m)) for m in order}
    assert not {m: v for m, v in wrong.items() if v}, f"imports of modules below them in the README's table: {wrong}"


def test_core_imports_only_the_standard_library_and_fastcore():
    tops = set()
    for node in ast.walk(ast.parse((ROOT / 'lvf' / 'core.py').read_text())):
        if isinstance(node, ast.Import): tops |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0: tops.add(node.module.split('.')[0])
    assert tops - set(sys.stdlib_module_names) - {'__future__'} <= {'fastcore'}


def test_the_checker_sees_an_import_inside_a_function():
    # the rule would be empty if the walker missed lazy imports: lvf.flops imports lvf.model inside a function only
    assert 'model' in lvf_imports('flops') and 'model' not in {
        n.module.split('.')[-1] for n in ast.parse((ROOT / 'lvf' / 'flops.py').read_text()).body
        if isinstance(n, ast.ImportFrom) and n.module}
