"""``python -m eventbus`` is the ``eventbus`` command."""

from .cli import main

main()
