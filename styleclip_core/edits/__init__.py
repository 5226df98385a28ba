"""The editing methods: latent optimisation and its losses, latent mapper training, global
directions (statistics, channel relevance and its cache, text directions), mask-local edits and
the masks they take."""
