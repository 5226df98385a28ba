"""The pack imports the way ComfyUI imports it with no compiler, no CUDA toolkit and no network,
and runs no installer, download or build at import (no program started, pip not importable,
nothing written to the home/cache folders or into the pack); its requirements leave torch to
ComfyUI."""
import json
import os
import subprocess
import sys
import tomllib

from conftest import PACK_NODE_IDS, ROOT

PROBE = r"""
import json, os, socket, subprocess, sys
import torch, numpy, PIL.Image, safetensors.torch  # ComfyUI's environment, imported before the pack
def refuse(*a, **k):
    raise AssertionError("the pack tried to reach the network or run a program at import")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
subprocess.Popen.__init__ = refuse
os.system = refuse
for name in ("posix_spawn", "posix_spawnp", "spawnv", "spawnve", "spawnvp", "spawnvpe", "execv", "execve", "execvp", "execvpe", "startfile"):
    if hasattr(os, name):
        setattr(os, name, refuse)
sys.modules["pip"] = sys.modules["ensurepip"] = None  # an import of pip fails
sys.path.insert(0, sys.argv[1])
import comfy_harness
nodes = comfy_harness.pack_nodes()
print(json.dumps(sorted(nodes)))
"""


def _pack_files():
    """Files of the repository (the pack) other than git's and Python's byte-code caches."""
    found = set()
    for root, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__")]
        found |= {os.path.join(root, f) for f in files}
    return found


def test_import_without_compiler_or_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = str(tmp_path / "bin")  # no gcc, nvcc, ninja, pip on PATH
    env["STYLECLIP_TEST_COMFY_BASE"] = str(tmp_path / "comfy")
    home = tmp_path / "home"
    home.mkdir()
    # where a build or download would land: the ops cache (~/.cache/comfyui-styleclip), torch's
    # extension and hub caches, pip's cache
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), TORCH_EXTENSIONS_DIR=str(home / "torch_extensions"),
               TORCH_HOME=str(home / "torch"), PIP_CACHE_DIR=str(home / "pip"), HF_HOME=str(home / "hf"))
    before = _pack_files()
    out = subprocess.run([sys.executable, "-c", PROBE, os.path.join(ROOT, "tools")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(json.loads(out.stdout.splitlines()[-1])) == PACK_NODE_IDS  # every node registered
    written = [os.path.join(root, f) for root, _, files in os.walk(home) for f in files]
    assert not written, f"the import wrote {written[:5]}"
    assert _pack_files() == before, f"the import wrote into the pack: {sorted(_pack_files() ^ before)[:5]}"


def test_requirements_and_pyproject_list_the_same_packages():
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        required = {line.split("#")[0].strip().replace(" ", "").replace('"', "'") for line in f if line.split("#")[0].strip()}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        declared = {d.replace(" ", "").replace('"', "'") for d in tomllib.load(f)["project"]["dependencies"]}
    assert required == declared, (required - declared, declared - required)


def test_requirements_never_name_torch():
    names = []
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        names += [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    names += project["project"]["dependencies"]
    for extra in project["project"].get("optional-dependencies", {}).values():
        names += extra
    bare = {n.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for n in names}
    assert not bare & {"torch", "torchvision", "torchaudio"}, bare
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and comfy["Icon"] and comfy["requires-comfyui"]
