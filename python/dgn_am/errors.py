"""The one exception the CLI turns into a single clear line and a non-zero exit."""


class InputError(Exception):
    """Bad user input (a file, a flag, a model) found before Caffe could abort on it.

    The message is one line: it names the offending thing and, where there is one, the fix.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
