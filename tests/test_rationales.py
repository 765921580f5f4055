"Tests of `ecor.rationales` as an installed module (the notebook covers the rest; these need the module's `__file__`)."
import pytest
from pathlib import Path
import ecor.rationales as R


def _blind_above(monkeypatch, top):
    "Make the search see no shared/ folder above `top` (this machine may have one, e.g. /tmp/shared)."
    find = R._find_shared
    def below(start):
        found = find(start)
        return found if found is not None and top in found.parents else None
    monkeypatch.setattr(R, '_find_shared', lambda start: below(start) if top in [start, *start.parents] else find(start))


def test_shared_dir_from_repo_root(tmp_path, monkeypatch):
    "Run from a folder with no shared/ above it: the search from the repo root still finds the data."
    monkeypatch.delenv('ECOR_SHARED', raising=False)
    monkeypatch.chdir(tmp_path)
    tmp_path = tmp_path.resolve()
    _blind_above(monkeypatch, tmp_path)
    assert R._find_shared(tmp_path) is None
    sd = R.shared_dir()
    assert (sd/'rationales'/'GPT3'/'cifar10_text.json').is_file()
    assert R._find_shared(R._repo_root()) == sd


def test_shared_dir_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv('ECOR_SHARED', raising=False)
    monkeypatch.chdir(tmp_path)
    tmp_path = tmp_path.resolve()
    monkeypatch.setattr(R, '_repo_root', lambda: tmp_path)
    _blind_above(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError, match='ECOR_SHARED'): R.shared_dir()


def test_env_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv('ECOR_SHARED', str(tmp_path))
    assert R.shared_dir() == tmp_path


def test_cifar10_counts():
    rs = R.load_rationales(R.dror_file('cifar10'))
    assert (len(rs), len(rs.unique_rationales), int(rs.membership.sum())) == (10, 56, 63)
    col = rs.membership[:, rs.rationale_index['a tail']]
    assert [c for c, m in zip(rs.categories, col.tolist()) if m] == ['airplane', 'dog', 'horse']


def test_csv_error_names_file_and_line(tmp_path):
    p = tmp_path/'bad.csv'
    p.write_text('category,rationale\ncat,fur\n,whiskers\n')
    with pytest.raises(ValueError, match=r'bad\.csv: line 3: empty category'): R.load_rationales(p)
