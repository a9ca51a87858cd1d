"""Model weights on demand: pulled from Hugging Face or ModelScope into one models directory.

``names`` checks what users type, ``hubs`` speaks to each hub through its own client, ``store`` owns
the directory (staging, atomic moves, listing, removal), ``pull`` ties them together, ``manifest``
lists the production set and ``cli`` is ``lingxi models``.
"""
