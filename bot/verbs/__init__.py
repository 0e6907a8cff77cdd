"""The verbs of ``/ami``: one folder per verb (its command, parse rule and words in
``command.py``, its card text and after-success lines in ``text.py``, its record in
``__init__.py``), the shared lexer (``lexer.py``), the shared checks (``common.py``)
and the one list of them all (``registry.py``)."""
