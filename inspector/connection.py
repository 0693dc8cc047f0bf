"""Placeholder: Connection arrives with the Connection issue."""


class Connection:  # replaced shortly
    pass
