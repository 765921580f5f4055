"tools/bench_sampled.py writes its CSV without losing rows: validation runs never land in the test-photo results file."
import importlib.util
from pathlib import Path
import pandas as pd
import pytest

_spec = importlib.util.spec_from_file_location('bench_sampled', Path(__file__).resolve().parent.parent/'tools'/'bench_sampled.py')
bs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(bs)

def _rows(config, seeds, acc, validation=False, epochs=4, lr=2e-3):
    return pd.DataFrame([dict(dataset='caltech101', config=config, seed=s, epochs=epochs, lr=lr, validation=validation, accuracy=acc) for s in seeds])

def test_out_path():
    assert bs.out_path(None, False) == bs.RESULTS
    assert bs.out_path('v.csv', True) == Path('v.csv')
    assert bs.out_path(None, True) == bs.VALIDATION
    with pytest.raises(SystemExit, match='test-photo runs only'): bs.out_path(str(bs.RESULTS), True)

def test_write_rows_merges(tmp_path):
    out = tmp_path/'r.csv'
    # a file written before the epochs / lr / validation columns: 4-epoch test runs at the default lr
    pd.DataFrame([dict(dataset='caltech101', config='sampled', seed=s, accuracy=.4) for s in range(3)]).to_csv(out, index=False)
    bs.write_rows(_rows('grad', [0, 1], .5), out)
    df = pd.read_csv(out)
    assert len(df) == 5 and set(df.config) == {'sampled', 'grad'} and (df.epochs == 4).all() and (~df.validation).all()
    bs.write_rows(_rows('grad', [1], .6), out)                   # a rerun replaces its own row, keeps the others
    df = pd.read_csv(out)
    assert len(df) == 5 and df[(df.config == 'grad') & (df.seed == 1)].accuracy.tolist() == [.6]
    assert df[(df.config == 'grad') & (df.seed == 0)].accuracy.tolist() == [.5]
    bs.write_rows(_rows('grad', [1], .7, epochs=16), out)        # another epoch count is another row
    assert len(pd.read_csv(out)) == 6
    bs.write_rows(_rows('sampled', [2], .8, lr=6e-3), out)       # and another lr
    df = pd.read_csv(out)
    assert len(df) == 7 and sorted(df[(df.config == 'sampled') & (df.seed == 2)].accuracy) == [.4, .8]
    bs.write_rows(_rows('sampled', [2], .9), out)                # the default lr's row is the old file's
    df = pd.read_csv(out)
    assert len(df) == 7 and sorted(df[(df.config == 'sampled') & (df.seed == 2)].accuracy) == [.8, .9]
