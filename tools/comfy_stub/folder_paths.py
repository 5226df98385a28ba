"""Stand-in for ComfyUI's folder_paths: model folders, input/output directories, save paths."""
import os

base_path = os.environ.get("STYLECLIP_TEST_COMFY_BASE", os.path.abspath("comfy_base"))
models_dir = os.path.join(base_path, "models")
output_directory = os.path.join(base_path, "output")
input_directory = os.path.join(base_path, "input")
temp_directory = os.path.join(base_path, "temp")
supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}


def set_base(path):
    global base_path, models_dir, output_directory, input_directory, temp_directory
    base_path = path
    models_dir = os.path.join(path, "models")
    output_directory, input_directory, temp_directory = (os.path.join(path, d) for d in ("output", "input", "temp"))
    for name, (paths, exts) in list(folder_names_and_paths.items()):
        folder_names_and_paths[name] = ([os.path.join(models_dir, name)], exts)


def add_model_folder_path(folder_name, full_folder_path, is_default=False):
    paths, exts = folder_names_and_paths.get(folder_name, ([], set()))
    if full_folder_path not in paths:
        paths = [full_folder_path] + paths if is_default else paths + [full_folder_path]
    folder_names_and_paths[folder_name] = (paths, exts)


def get_folder_paths(folder_name):
    return list(folder_names_and_paths[folder_name][0])


def get_filename_list(folder_name):
    paths, exts = folder_names_and_paths.get(folder_name, ([], set()))
    out = set()
    for base in paths:
        if not os.path.isdir(base):
            continue
        for root, _, files in os.walk(base, followlinks=True):
            for f in files:
                if not exts or os.path.splitext(f)[1].lower() in exts:
                    out.add(os.path.relpath(os.path.join(root, f), base).replace(os.sep, "/"))
    return sorted(out)


def get_full_path(folder_name, filename):
    for base in folder_names_and_paths.get(folder_name, ([], set()))[0]:
        p = os.path.join(base, filename)
        if os.path.isfile(p):
            return p
    return None


def get_full_path_or_raise(folder_name, filename):
    p = get_full_path(folder_name, filename)
    if p is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return p


def get_output_directory():
    return output_directory


def get_input_directory():
    return input_directory


def get_user_directory():
    return os.path.join(base_path, "user")


def get_temp_directory():
    return temp_directory


def get_annotated_filepath(name, default_dir=None):
    if name.endswith("[output]"):
        return os.path.join(output_directory, name[:-8].strip())
    if name.endswith("[input]"):
        return os.path.join(input_directory, name[:-7].strip())
    return os.path.join(default_dir or input_directory, name)


def exists_annotated_filepath(name):
    return os.path.exists(get_annotated_filepath(name))


def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    os.makedirs(full_output_folder, exist_ok=True)
    counter = 1
    for f in os.listdir(full_output_folder):
        if f.startswith(filename + "_"):
            digits = f[len(filename) + 1:].split("_")[0]
            if digits.isdigit():
                counter = max(counter, int(digits) + 1)
    return full_output_folder, filename, counter, subfolder, filename_prefix
