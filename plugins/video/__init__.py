"""Built-in plug-ins for video: the conv encoder/decoder, the flow-grid task and the video datasets."""
