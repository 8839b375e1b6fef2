"""The one exception type for a user's mistake: its message is the one line they see."""


class TuilabError(ValueError):
    """Bad input: the message names the bad value and what is allowed."""


def choice_error(kind: str, value: object, allowed) -> TuilabError:
    """An error for a name that is not one of `allowed`, with the closest match suggested."""
    import difflib

    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return TuilabError(f"unknown {kind} {value!r}; choose one of: {', '.join(allowed)}.{hint}")
