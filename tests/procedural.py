"""The deterministic "procedural" weights of fixtures/e4e_and_id_procedural (rules in its json)."""
import math
import zlib

import numpy as np
import torch


def u(key: str, shape) -> np.ndarray:
    n = int(np.prod(shape)) if len(shape) else 1
    return np.random.RandomState(zlib.crc32(key.encode("utf-8"))).random_sample(n).reshape(shape)


def value(key: str, shape, keys) -> torch.Tensor:
    shape = tuple(shape)
    module = key.rsplit(".", 1)[0]
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        a = 0.5 + u(key, shape)
    elif key.endswith("running_mean"):
        a = 0.2 * u(key, shape) - 0.1
    elif key.endswith("bias"):
        a = 0.2 * u(key, shape) - 0.1
    elif len(shape) == 1 and key.endswith("weight"):
        a = 0.8 + 0.4 * u(key, shape) if f"{module}.running_mean" in keys else 0.1 + 0.3 * u(key, shape)
    elif key.startswith("styles.") and key.endswith(".linear.weight"):
        a = (2 * u(key, shape) - 1) * math.sqrt(3)
    else:
        fan_in = int(np.prod(shape[1:]))
        a = (2 * u(key, shape) - 1) * math.sqrt(3 / fan_in)
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).float()


def state_dict(manifest_keys: dict) -> dict[str, torch.Tensor]:
    keys = set(manifest_keys)
    return {k: value(k, v["shape"], keys) for k, v in manifest_keys.items()}
