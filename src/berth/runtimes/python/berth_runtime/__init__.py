"""berth's Python runtime: runs inside a sandbox and speaks the Lambda Runtime API.

It must import on every Python that a `python3.X` function may run on (3.9 and later) and must
not import berth itself: the sandbox's interpreter has none of the server's packages.
"""
