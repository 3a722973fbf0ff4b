"""What the layers agree on: the wire models, the ``SyncApi`` protocol and its errors.

No I/O; every layer may import it. It imports nothing of sync_pipelines but ``common``.
"""
