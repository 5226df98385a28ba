"""Stand-in for comfy.utils.ProgressBar; records updates so tests can inspect them."""
PROGRESS_LOG = []


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total, self.current = total, 0

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = value
        PROGRESS_LOG.append((value, self.total, preview is not None))

    def update(self, value):
        self.update_absolute(self.current + value)
