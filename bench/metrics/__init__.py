"""Measuring host processes: the psutil sampler and the window arithmetic over its rows."""
