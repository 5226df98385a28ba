"""Real photos: FFHQ face alignment (landmarks from a detector or typed points) and pasting
edited faces back into the whole photo."""
