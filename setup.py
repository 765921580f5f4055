"Install `ecor` from `settings.ini` (nbdev 2 layout); no pkg_resources."
from configparser import ConfigParser
import setuptools, shlex

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
console_scripts = [s.strip() for s in cfg.get('console_scripts', '').split('\n') if s.strip()]
licenses = {'apache2': 'Apache-2.0'}

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    license=licenses[cfg['license']], classifiers=['Programming Language :: Python :: 3'],
    author=cfg['author'], author_email=cfg['author_email'], url=cfg['git_url'],
    packages=setuptools.find_namespace_packages(include=['ecor', 'ecor.*']), include_package_data=True,
    package_data={'ecor.assets': ['*.txt', 'labels/*.txt', 'aliases/*.json']},
    install_requires=requirements, extras_require={'dev': dev_requirements},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False, entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg["lib_name"]}={cfg["lib_name"]}._modidx:d']},
)
