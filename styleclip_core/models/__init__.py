"""The networks and the codes they take: StyleGAN2 generator, latents and rendering, e4e,
IR-SE / ArcFace, CLIP, the BiSeNet face parser and the latent mappers. Nothing here reads or
writes files (that is ``formats``)."""
