"""Peer apps for `make bench`: the same page served the way other Flask projects serve it."""
