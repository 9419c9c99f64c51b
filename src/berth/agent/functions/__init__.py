"""The function worker: sandbox pools, the Lambda Runtime API, logs of invocations."""
