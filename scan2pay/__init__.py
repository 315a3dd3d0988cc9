"""``scan2pay``: the umbrella command; ``scan2pay demo`` runs the whole flow."""
