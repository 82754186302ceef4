from . import routes  # noqa: F401 (registers the opt-out route)
