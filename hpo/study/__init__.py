"""What a study is and how it is loaded.

- ``config``: ``Study``, the frozen, validated description of one search;
- ``file``: study files (Python defining ``STUDY`` or ``STUDIES``), loaded with one-line errors.
"""
