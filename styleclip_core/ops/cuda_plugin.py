"""CUDA plugin for the ops (placeholder until the kernels land): never available."""


def available() -> bool:
    return False


def failure_reason() -> str:
    return "the CUDA plugin is not part of this build"
