"""ArcFace IR-SE50 identity features match StyleCLIP's IDLoss on the procedural fixture."""
import pytest
import torch

import procedural
from conftest import load_fixture, load_manifest
from styleclip_core.models.irse import ArcFaceBackbone, identity_features


@pytest.fixture(scope="module")
def fixture():
    return load_fixture("e4e_and_id_procedural")


@pytest.fixture(scope="module")
def arcface(fixture):
    manifest = load_manifest("irse50_backbone_112")["keys"]
    state = procedural.state_dict(manifest)
    net = ArcFaceBackbone.from_state_dict(state)
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == {k: v["shape"] for k, v in manifest.items()}
    return net


def test_procedural_weights_match_probe(fixture, parity):
    _, meta = fixture
    keys = load_manifest("irse50_backbone_112")["keys"]
    for key, first in meta["procedural_weights"]["probe_first_6_values"]["irse50"].items():
        got = procedural.value(key, keys[key]["shape"], set(keys)).flatten()[:6]
        # exact: correctly rounded float64 operations and one cast to float32 (see test_e4e.py)
        parity.close(f"e4e_and_id_procedural:probe.irse50.{key}", got, torch.tensor(first), atol=0, rtol=0)


@torch.no_grad()
def test_identity_features_and_loss(fixture, arcface, parity):
    T, meta = fixture
    tol = meta["tolerance"]
    a = (2 * torch.from_numpy(procedural.u("id_image_a", (1, 3, 256, 256))) - 1).float()
    b = (2 * torch.from_numpy(procedural.u("id_image_b", (1, 3, 1024, 1024))) - 1).float()
    fa, fb = identity_features(arcface, a), identity_features(arcface, b)
    parity.close("e4e_and_id_procedural:out.id.feats_a", fa, T["out.id.feats_a"], atol=tol["atol"], rtol=tol["rtol"])
    parity.close("e4e_and_id_procedural:out.id.feats_b", fb, T["out.id.feats_b"], atol=tol["atol"], rtol=tol["rtol"])
    loss = (1 - (fb * fa).sum(1)).mean()
    parity.close("e4e_and_id_procedural:out.id.loss_b_vs_a", loss, T["out.id.loss_b_vs_a"].reshape(()), atol=tol["atol"], rtol=tol["rtol"])
