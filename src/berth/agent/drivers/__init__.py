"""Container drivers: docker (Docker Engine), runc (daemonless OCI), process (no isolation).

The contract is `base.Driver`; `detect.detect_driver` picks the one this host can run.
"""
