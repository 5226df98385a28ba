"""Draw the pack's icon (docs/images/icon.png, 256x256 PNG; pyproject's [tool.comfy] Icon points
at it): a face outline with purple hair over a text caret, on a dark rounded square.
Run from anywhere: ``python tools/make_icon.py``."""
import os

from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = os.path.join(ROOT, "docs", "images", "icon.png")
SIZE = 256
S = 4  # drawn at 4x, then downscaled (antialiasing)


def draw() -> Image.Image:
    n = SIZE * S
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    # background: a rounded square, dark blue-grey fading to violet
    bg = Image.new("RGBA", (n, n))
    bd = ImageDraw.Draw(bg)
    for y in range(n):
        t = y / (n - 1)
        bd.line([(0, y), (n, y)], fill=(int(28 + 40 * t), int(30 + 6 * t), int(48 + 52 * t), 255))
    mask = Image.new("L", (n, n), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, n - 1, n - 1], radius=56 * S, fill=255)
    img.paste(bg, (0, 0), mask)
    # hair: a purple cap behind the face
    d.ellipse([64 * S, 40 * S, 192 * S, 176 * S], fill=(176, 74, 230, 255))
    d.rectangle([64 * S, 108 * S, 192 * S, 170 * S], fill=(176, 74, 230, 255))
    # face
    d.ellipse([80 * S, 64 * S, 176 * S, 184 * S], fill=(246, 214, 186, 255))
    d.ellipse([104 * S, 108 * S, 116 * S, 120 * S], fill=(40, 40, 56, 255))
    d.ellipse([140 * S, 108 * S, 152 * S, 120 * S], fill=(40, 40, 56, 255))
    d.arc([106 * S, 126 * S, 150 * S, 160 * S], start=20, end=160, fill=(200, 60, 90, 255), width=5 * S)
    # a text caret: the edit is driven by text
    d.rounded_rectangle([44 * S, 200 * S, 212 * S, 228 * S], radius=10 * S, fill=(255, 255, 255, 235))
    for i, x in enumerate(range(56, 160, 20)):
        d.rounded_rectangle([x * S, 210 * S, (x + 12 + 4 * (i % 2)) * S, 218 * S], radius=3 * S, fill=(90, 90, 110, 255))
    d.rectangle([170 * S, 205 * S, 174 * S, 223 * S], fill=(176, 74, 230, 255))
    return img.resize((SIZE, SIZE), Image.LANCZOS)


if __name__ == "__main__":
    os.makedirs(os.path.dirname(PATH), exist_ok=True)
    draw().save(PATH, optimize=True)
    print("wrote", PATH, os.path.getsize(PATH), "bytes")
