"""The benchmarks' and tests' handle on a real server (see :mod:`shoprec.serving.process`)."""

from shoprec.serving.process import Server, free_port, start_server

__all__ = ["Server", "free_port", "start_server"]
