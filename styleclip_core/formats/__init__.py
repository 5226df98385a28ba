"""Files: reading the official checkpoints into ``models`` (without running code from them) and
writing the pack's own ``.safetensors``; the model catalog and the tiny random stand-ins; one
atomic writer and one content fingerprint (``files``) used by every writer."""
