"""Start a real ComfyUI (``COMFYUI_PATH``) on 127.0.0.1 with --cpu for the acceptance tests.

Its base directory is temporary and holds the pack (a link to this repository) in
custom_nodes and the tiny stand-in models, as a new user's would, so nothing of a user's ComfyUI
installation is touched. The input folder holds only the clip a user would pick for workflow 18
(core Load Video): the Example Clip as mp4 (tests/example_video.py).
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

COMFYUI = os.environ.get("COMFYUI_PATH")
PACK_FOLDER = "ComfyUI-StyleCLIP"


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def post(url, data):
    req = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_comfyui(base: str, pack_root: str):
    """Yield the server's URL; the log is ``base/server.log``."""
    from styleclip_core.formats import tiny_models

    os.makedirs(os.path.join(base, "custom_nodes"), exist_ok=True)
    os.symlink(pack_root, os.path.join(base, "custom_nodes", PACK_FOLDER))
    tiny_models.write_models_folder(os.path.join(base, "models"))
    import example_video

    if example_video.can_write():
        example_video.write_example_clip(os.path.join(base, "input"))
    port = _free_port()
    log = open(os.path.join(base, "server.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", base, "--disable-auto-launch"],
        cwd=COMFYUI, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            try:
                get(url + "/system_stats")
                break
            except OSError:
                time.sleep(0.5)
        if proc.poll() is not None or time.time() >= deadline:
            raise RuntimeError("ComfyUI did not start:\n" + open(os.path.join(base, "server.log")).read()[-4000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def wait_for(url: str, prompt_id: str, timeout: float = 300) -> dict:
    """The history entry of a queued prompt once it has finished."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
            return history[prompt_id]
        time.sleep(0.25)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")
