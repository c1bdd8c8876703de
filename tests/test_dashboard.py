"""hpo.results.dashboard and ``hpo dashboard``: optuna-dashboard served on a free loopback port,
asked for its studies over HTTP, then stopped; and the one-line refusals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import optuna
import pytest

from hpo.cli import main
from hpo.errors import ConfigError, StorageError
from hpo.results.dashboard import free_port, open_dashboard
from hpo.store.storage import open_storage, storage_file
from tests.conftest import write_study

NAMES = ["lr-cosine", "lr-step"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A journal holding two small studies, written with Optuna directly (no training)."""
    path = str(tmp_path_factory.mktemp("dash") / "s.journal")
    backend = open_storage(path)
    for name in NAMES:
        study = optuna.create_study(storage=backend, study_name=name, direction="maximize")
        study.optimize(lambda t: 1 - t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=2)
    return path


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def study_names(base_url: str) -> list[str]:
    return [s["study_name"] for s in get_json(base_url + "api/studies")["study_summaries"]]


def nothing_listens_on(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_the_dashboard_lists_the_studies_of_the_storage_then_stops(storage: str) -> None:
    port = free_port()
    dashboard = open_dashboard(storage, port=port).start()
    try:
        assert dashboard.url == f"http://127.0.0.1:{port}/"
        assert sorted(study_names(dashboard.url)) == NAMES
        study_id = get_json(dashboard.url + "api/studies")["study_summaries"][0]["study_id"]
        detail = get_json(f"{dashboard.url}api/studies/{study_id}")
        assert len(detail["trials"]) == 2
    finally:
        dashboard.stop()
    assert nothing_listens_on(port)


def test_port_zero_takes_any_free_port(storage: str) -> None:
    with open_dashboard(storage, port=0) as dashboard:
        dashboard.start()
        assert not dashboard.url.endswith(":0/")
        assert sorted(study_names(dashboard.url)) == NAMES


def test_a_busy_port_is_refused_naming_it(storage: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"Port {port} on 127\.0\.0\.1 is busy.*--port"):
            open_dashboard(storage, port=port)


def test_a_missing_default_storage_says_there_are_no_studies_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        StorageError,
        match=r"No studies yet: there is no hpo\.journal in .*"
        r"run `hpo run STUDY_FILE`",
    ):
        open_dashboard(port=0)
    assert not (tmp_path / "hpo.journal").exists()  # not created empty


def test_a_missing_storage_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"No storage at .*nothing\.db"):
        open_dashboard(f"sqlite:///{tmp_path / 'nothing.db'}", port=0)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("hpo.journal", Path("hpo.journal")),
        ("runs/a.journal", Path("runs/a.journal")),
        ("sqlite:///hpo.db", Path("hpo.db")),
        ("sqlite:////abs/hpo.db", Path("/abs/hpo.db")),
        ("sqlite:///:memory:", None),
        ("postgresql://user@host/db", None),
    ],
)
def test_storage_file(url: str, path: Path | None) -> None:
    assert storage_file(url) == path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dashboard"], r"No studies yet"),
        (["dashboard", "--storage", "gone.journal"], r"No storage at 'gone\.journal'"),
    ],
)
def test_cli_dashboard_refuses_a_missing_storage_in_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err)


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("70000", r"expected a port from 0 to 65535, got '70000'"),
        ("-1", r"expected a port from 0 to 65535, got '-1'"),
        ("web", r"expected a port number, got 'web'"),
    ],
)
def test_cli_dashboard_refuses_a_bad_port_in_one_line(
    port: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", f"--port={port}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err)


def test_cli_dashboard_on_a_busy_port(storage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["dashboard", "--storage", storage, "--port", str(port)]) == 2
    assert f"Port {port} on 127.0.0.1 is busy" in capsys.readouterr().err


@pytest.mark.slow
def test_hpo_dashboard_prints_its_url_serves_and_stops_on_ctrl_c(storage: str) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "hpo.cli",
        "dashboard",
        "--storage",
        storage,
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            first = process.stdout.readline() if process.stdout else ""
            assert f"http://127.0.0.1:{port}/" in first
            assert sorted(study_names(f"http://127.0.0.1:{port}/")) == NAMES
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert "Dashboard stopped." in out
    assert nothing_listens_on(port)


def _chromium() -> str:
    """Debian's headless chromium; `make test` installs it when missing (CI runs that)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (`make test` installs it)")
    return found


def screenshot(url: str, path: Path, size: tuple[int, int] = (1280, 900)) -> np.ndarray:
    """The page as a real browser draws it: (height, width, channels) floats in [0, 1]."""
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=15000",
         f"--screenshot={path}", url],
        check=True, capture_output=True, timeout=180)
    return np.asarray(matplotlib.image.imread(path))


@pytest.mark.slow
def test_the_dashboard_shows_short_trial_attributes_in_a_real_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study as `hpo run` stores it: the dashboard's trial page stays readable (no 14 KB
    history, no params JSON among the attributes it shows), checked in headless chromium."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(write_study(tmp_path, n_trials=2)), "--no-progress",
                 "--workers", "1"]) == 0
    with open_dashboard("hpo.journal", port=0) as dashboard:
        dashboard.start()
        study_id = get_json(dashboard.url + "api/studies")["study_summaries"][0]["study_id"]
        detail = get_json(f"{dashboard.url}api/studies/{study_id}")
        study_attrs = {attr["key"]: attr["value"] for attr in detail["user_attrs"]}
        assert "hpo_record" not in study_attrs and len(study_attrs["data"]) < 100, study_attrs
        for trial in detail["trials"]:
            shown = {attr["key"]: attr["value"] for attr in trial["user_attrs"]}
            assert "history" not in shown and "params" not in shown
            assert max(len(str(value)) for value in shown.values()) < 100, shown
        pixels = screenshot(f"{dashboard.url}dashboard/studies/{study_id}/trials",
                            tmp_path / "trials.png")
    assert pixels.shape[:2] == (900, 1280)
    page = pixels[80:, 300:, :3]  # below the app bar, right of the trial list
    drawn = (page < 0.9).any(axis=2).mean()  # share of pixels that are not background
    assert 0.02 < drawn < 0.6, drawn  # the trial's values and attributes were rendered
