"""Benchmark harness: sync-pipelines' engine against dlt on a generated workload.

Run ``python -m bench --help`` (or ``make bench``).
"""
