"""Tools shared by the tests and the benchmarks: a live server, gunicorn, the security scan."""
