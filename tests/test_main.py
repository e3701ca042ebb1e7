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


def test_stream_probe_times_one_pass_of_each_stream(monkeypatch):
    monkeypatch.setattr(_benchmarks, "PROBE_BYTES", 8 * 2**20)
    for stream, passes in (("read", 1), ("copy", 2), ("fresh", 2)):
        run, nbytes = _benchmarks.stream_probe(stream, 1)
        run()
        assert nbytes == passes * 8 * 2**20
    with pytest.raises(ValueError, match="stream must be"):
        _benchmarks.stream_probe("write", 1)


def test_table_footer_gives_the_range_of_limits_measured_in_turn():
    case = _benchmarks.Case("layer_norm", None, {}, 2, "fresh")
    X = _benchmarks.make_data((64, 8), "float32")
    infos = [_benchmarks.result_info(case, X, 2, 1e-3, {"torch": 2e-3}, machine_gbps=g)
             for g in (10.0, 12.5)]
    assert [i["bw_fraction"] for i in infos] == [X.nbytes * 2 / 1e-3 / 1e9 / g
                                                 for g in (10.0, 12.5)]
    assert "fresh 10.0-12.5 GB/s (2 thr)" in _benchmarks.format_table(infos)
