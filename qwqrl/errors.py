"""The one exception type for user mistakes: the CLI prints its message and exits 2."""


class UserError(Exception):
    """Bad input from the user (a recipe, a data file, a flag). The message says what and where."""
