"""Built-in plug-ins on the latents: the SCC triplet and the MI-MWS regularizers."""
