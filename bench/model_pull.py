"""``lingxi models pull`` against a local server speaking the Hugging Face and ModelScope APIs.

    .venv/bin/python bench/model_pull.py [--mb 100] [--runs 3]

1. Throughput: a file of ``--mb`` MB pulled through the real huggingface_hub and modelscope clients
   (listing, metadata, download, sha256 check, atomic move) against ``curl -o`` on the same URL the
   client downloads from; the server runs in its own process and sends with sendfile.
2. Resume: a pull interrupted (Ctrl-C) once half the file is on disk, then run again: the bytes sent
   the second time, as a share of the file.
   Run again with the server paced to ``--gbit`` (default 1 Gbit/s), the speed of a good link to a hub.
3. Memory: the peak RSS of a ``lingxi models pull`` process for a small and the large file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.models.hubs import HuggingFace, ModelScope  # noqa: E402
from services.models.pull import Candidate, pull  # noqa: E402
from services.models.store import ModelStore  # noqa: E402
from tests.models.hub_servers import Hub, serve  # noqa: E402

REPO = "bench/blob"


def make_file(directory: Path, mb: int) -> Path:
    path = directory / f"blob-{mb}MB.bin"
    with path.open("wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1_000_000))
    return path


def server_process(path: Path, rate: float | None, ready: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    hub = Hub(rate=rate)
    blob = hub.add(REPO, path.name, path)
    with serve(hub):
        ready.put((hub.port, blob.sha256))
        stop.wait()


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def throughput(path: Path, runs: int, work: Path, rate: float | None) -> None:
    ready: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    stop = multiprocessing.Event()
    server = multiprocessing.Process(target=server_process, args=(path, rate, ready, stop), daemon=True)
    server.start()
    port, sha = ready.get(timeout=60)
    url = f"http://127.0.0.1:{port}"
    cdn = f"http://localhost:{port}/cdn/{sha}"
    size = path.stat().st_size
    hubs = {"hf": HuggingFace(url), "modelscope": ModelScope(url)}

    def curl() -> None:
        subprocess.run(["curl", "-s", "--fail", "-o", str(work / "curl.bin"), cdn], check=True)

    def lingxi(source: str) -> None:
        root = work / f"models-{source}"
        shutil.rmtree(root, ignore_errors=True)
        pull(REPO, [Candidate(source, REPO)], store=ModelStore(root), hubs=hubs)

    results: dict[str, list[float]] = {"curl": [], "hf": [], "modelscope": []}
    for _ in range(runs):  # interleaved, so a busy moment hits each alike
        results["curl"].append(timed(curl))
        results["hf"].append(timed(lambda: lingxi("hf")))
        results["modelscope"].append(timed(lambda: lingxi("modelscope")))
    stop.set()
    server.join(10)
    best_curl = size / min(results["curl"]) / 1e6
    link = "loopback, unpaced" if rate is None else f"paced to {rate * 8 / 1e9:.1f} Gbit/s"
    print(f"\n{size / 1e6:.0f} MB, {link}, best of {runs} (median in brackets), MB/s:")
    for name, times in results.items():
        best, median = size / min(times) / 1e6, size / statistics.median(times) / 1e6
        print(f"  {name:<11} {best:8.0f} ({median:.0f})   {best / best_curl:.2f} x curl")


def pull_command(env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "services.cli", "models", "pull", REPO, "--source", "hf"]


def peak_rss_mb(env: dict[str, str]) -> float:
    """The pull's own peak RSS (GNU time's %M: getrusage from fork would count this process's pages)."""
    report = Path(env["LINGXI_MODELS_DIR"] + ".rss")
    command = ["/usr/bin/time", "-f", "%M", "-o", str(report), *pull_command(env)]
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return int(report.read_text().split()[-1]) / 1024


def resume_and_memory(path: Path, small: Path, work: Path) -> None:
    size = path.stat().st_size
    for blob, label in ((small, "small"), (path, "large")):
        hub = Hub()
        hub.add(REPO, blob.name, blob)
        with serve(hub):
            env = {**os.environ, "LINGXI_MODELS_DIR": str(work / f"mem-{label}"), "HF_ENDPOINT": hub.url}
            rss = peak_rss_mb(env)
            print(f"  peak RSS of `lingxi models pull` for {blob.stat().st_size / 1e6:.0f} MB: {rss:.0f} MB")

    hub = Hub(pause_at=size // 2)
    hub.add(REPO, path.name, path)
    with serve(hub):
        root = work / "resume"
        env = {**os.environ, "LINGXI_MODELS_DIR": str(root), "HF_ENDPOINT": hub.url}
        process = subprocess.Popen(pull_command(env), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hub.paused.wait(120)
        while sum(p.stat().st_size for p in root.rglob("*.part")) < size // 2 - 1_048_576:
            time.sleep(0.05)
        on_disk = sum(p.stat().st_size for p in root.rglob("*.part"))
        process.send_signal(signal.SIGINT)
        process.wait(60)
        hub.pause_at, hub.sent = None, 0
        hub.resume.set()
        again = subprocess.run(pull_command(env), env=env, stdout=subprocess.DEVNULL)
        assert again.returncode == 0
        print(
            f"  interrupted with {on_disk / 1e6:.1f} MB of {size / 1e6:.0f} MB on disk; the second pull "
            f"transferred {hub.sent / 1e6:.1f} MB = {hub.sent / size:.0%} of the file"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gbit", type=float, default=1.0, help="also pace the server to this link speed (0: not)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lingxi-pull-bench-") as tmp:
        work = Path(tmp)
        path, small = make_file(work, args.mb), make_file(work, 10)
        throughput(path, args.runs, work, None)
        if args.gbit:
            throughput(path, args.runs, work, args.gbit * 1e9 / 8)
        print("\nresume and memory:")
        resume_and_memory(path, small, work)


if __name__ == "__main__":
    main()
