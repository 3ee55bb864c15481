"""wandb.login() with the key from the environment; prints `RESULT {"error": <exception class or null>}`."""

import json

import wandb

try:
    wandb.login()
    error = None
except Exception as exc:  # noqa: BLE001 - the test wants to see which error the SDK raised
    error = type(exc).__name__
print("RESULT " + json.dumps({"error": error}))
