"""The one exception type that the command line turns into a single sentence and a non-zero exit."""


class PyroDGMError(Exception):
    """Bad input or a failed run, explained in one sentence for the user.

    Raise it with a message that says what was wrong and what was expected; ``pyro-dgm``
    prints ``error: <message>`` and exits with status 2, without a traceback.
    """


def run_or_exit(parser, run, argv=None) -> None:
    """Parse ``argv`` with the argparse ``parser`` and call ``run(args)``; a
    :class:`PyroDGMError` becomes one line ``error: <message>`` and exit status 2 (the
    benchmarks' command lines)."""
    args = parser.parse_args(argv)
    try:
        run(args)
    except PyroDGMError as error:
        parser.exit(2, f"error: {error}\n")
