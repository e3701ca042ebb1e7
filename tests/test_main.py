"""python -m fastnorm: the demonstration and the speed table run and say the truth."""
import subprocess
import sys

import pytest

from fastnorm import __main__ as cli
from fastnorm import _benchmarks


def test_demo_shows_identical_results(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "All results equal scikit-learn's" in out
    assert "identical predictions: yes" in out
    assert " NO" not in out


def test_bench_prints_a_table(capsys, monkeypatch):
    monkeypatch.setattr(_benchmarks, "QUICK_SHAPES", [(3000, 16)])
    monkeypatch.setattr(_benchmarks, "PROBE_BYTES", 8 * 2**20)
    _benchmarks.machine_bandwidth.cache_clear()
    try:
        assert cli.main(["bench", "--threads", "1"]) == 0
    finally:
        _benchmarks.machine_bandwidth.cache_clear()
    captured = capsys.readouterr()
    assert "[6/6]" in captured.err  # progress, on stderr
    for name in ("scale", "minmax_scale", "maxabs_scale", "normalize", "moments", "min_max"):
        assert f"| {name} |" in " ".join(captured.out.split()).replace("  ", " ")
    assert "GB/s" in captured.out and "3000x16" in captured.out


def test_help_names_the_subcommands():
    res = subprocess.run([sys.executable, "-m", "fastnorm", "--help"],
                         capture_output=True, text=True, check=True)
    assert "demo" in res.stdout and "bench" in res.stdout


def test_bad_threads_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_bench_plot_draws_a_picture(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_benchmarks, "QUICK_SHAPES", [(3000, 16)])
    monkeypatch.setattr(_benchmarks, "PROBE_BYTES", 8 * 2**20)
    _benchmarks.machine_bandwidth.cache_clear()
    path = tmp_path / "bw.png"
    try:
        assert cli.main(["bench", "--threads", "1", "--plot", str(path)]) == 0
    finally:
        _benchmarks.machine_bandwidth.cache_clear()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {path}" in capsys.readouterr().out


def test_machine_bandwidth_measures_the_fresh_write_stream(monkeypatch):
    monkeypatch.setattr(_benchmarks, "PROBE_BYTES", 8 * 2**20)
    _benchmarks.machine_bandwidth.cache_clear()
    try:
        bw = _benchmarks.machine_bandwidth(1)
    finally:
        _benchmarks.machine_bandwidth.cache_clear()
    assert set(bw) == {"read", "copy", "fresh"} and all(v > 0 for v in bw.values())
