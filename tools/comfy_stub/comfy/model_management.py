"""Stand-in for comfy.model_management: CPU device and the interruption flag."""
import torch


class InterruptProcessingException(Exception):
    pass


interrupt_processing = False


def interrupt_current_processing(value=True):
    global interrupt_processing
    interrupt_processing = value


def processing_interrupted():
    return interrupt_processing


def throw_exception_if_processing_interrupted():
    global interrupt_processing
    if interrupt_processing:
        interrupt_processing = False
        raise InterruptProcessingException()


def get_torch_device():
    return torch.device("cpu")


def intermediate_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


def soft_empty_cache(force=False):
    pass


loaded_models = []  # patchers currently on the compute device, as ComfyUI's current_loaded_models


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None, force_full_load=False):
    for patcher in models:
        patcher.model.to(patcher.load_device)
        if patcher not in loaded_models:
            loaded_models.append(patcher)


def unload_all_models():
    while loaded_models:
        patcher = loaded_models.pop()
        patcher.model.to(patcher.offload_device)
