"""The library's own exception: :class:`Captum3DCamError`, a mistake of the user's.

Lives here: the one exception class every layer may raise (a missing file, an unknown model,
method or layer name). Does not live here: argument checks themselves (they stay next to the code
they guard) and the command line's printing of errors (:mod:`captum_3dcam.cli._common`).
"""

__all__ = ["Captum3DCamError"]


class Captum3DCamError(ValueError):
    """A mistake of the user's (bad argument, missing file, unknown name).

    A ``ValueError``, so code that catches bad values keeps working; ``captum-3dcam`` prints it as
    one line and exits with status 2.
    """
