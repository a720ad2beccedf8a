"""The one exception type that the command line turns into a single sentence and a non-zero exit."""


class PyroDGMError(Exception):
    """Bad input or a failed run, explained in one sentence for the user.

    Raise it with a message that says what was wrong and what was expected; ``pyro-dgm``
    prints ``error: <message>`` and exits with status 2, without a traceback.
    """
