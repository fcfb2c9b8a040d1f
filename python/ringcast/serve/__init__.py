"""``ringcast serve``: runs the rings, feed handlers, book builders and user
stages declared in a TOML file as one supervised, observable service."""
