"""Speech plug-ins: the ``fsdd`` and ``timit`` datasets, the ``mel-fbank`` codec, the ``volume`` task
and the ``eer`` metric (see docs/speech.md)."""
