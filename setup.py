"Packaging for lvf: reads settings.ini (nbdev 2 layout) without pkg_resources."
import shutil
from configparser import ConfigParser
from pathlib import Path
import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

def _reqs(key): return cfg.get(key, '').split()

class BuildPy(build_py):
    "Also copy the notebooks papermill runs (and the benchmark results the study reads) into the package: `pip install .` works."
    def run(self):
        super().run()
        for sub, pattern in (('experiments', '*.ipynb'), ('benchmarks', '*.ipynb'), ('benchmarks/results', '*.json')):
            dst = Path(self.build_lib) / cfg['lib_path'] / sub
            dst.mkdir(parents=True, exist_ok=True)
            for f in Path(cfg['nbs_path'], sub).glob(pattern): shutil.copy2(f, dst / f.name)

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
lic = licenses[cfg['license']]

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    license=lic[0], author=cfg['author'], author_email=cfg['author_email'], url=cfg['git_url'],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1], 'Natural Language :: ' + cfg['language'].title(),
                 'Programming Language :: Python :: 3'],
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True, python_requires='>=' + cfg['min_python'],
    install_requires=_reqs('requirements'),
    extras_require={'embedded': _reqs('embedded_requirements'), 'docs': _reqs('docs_requirements'),
                    'dev': _reqs('dev_requirements') + _reqs('docs_requirements') + _reqs('tensorboard_requirements'),
                    'bench': _reqs('bench_requirements'), 'ray': _reqs('ray_requirements'),
                    'tensorboard': _reqs('tensorboard_requirements')},
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False, cmdclass={'build_py': BuildPy},
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
