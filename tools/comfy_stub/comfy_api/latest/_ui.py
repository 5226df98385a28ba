class PreviewText:
    def __init__(self, value, **kwargs):
        self.value = value

    def as_dict(self):
        return {"text": (self.value,)}
