"""The pack imports the way ComfyUI imports it with no compiler, no CUDA toolkit and no network,
and runs no installer or build at import; its requirements leave torch to ComfyUI."""
import os
import subprocess
import sys
import tomllib

from conftest import ROOT

PROBE = r"""
import os, socket, subprocess, sys
import torch, numpy, PIL.Image, safetensors.torch  # ComfyUI's environment, imported before the pack
def refuse(*a, **k):
    raise AssertionError("the pack tried to reach the network or run a program at import")
socket.socket.connect = refuse
socket.create_connection = refuse
subprocess.Popen.__init__ = refuse
os.system = refuse
sys.path.insert(0, sys.argv[1])
import comfy_harness
nodes = comfy_harness.pack_nodes()
print(len(nodes), "nodes")
"""


def test_import_without_compiler_or_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
    env["PATH"] = str(tmp_path)  # no gcc, nvcc, ninja, pip on PATH
    env["STYLECLIP_TEST_COMFY_BASE"] = str(tmp_path / "comfy")
    out = subprocess.run([sys.executable, "-c", PROBE, os.path.join(ROOT, "tools")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[0]) > 10


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
    assert comfy["PublisherId"] and comfy["DisplayName"] and "requires-comfyui" in comfy
