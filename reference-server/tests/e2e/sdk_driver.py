"""Read secrets through SikkerKey's Python SDK and print what it returned as one JSON object.

Usage: python sdk_driver.py VAULT_ID PROJECT_ID SECRET_ID STRUCTURED_ID DENIED_ID

The SDK finds the machine's identity under $SIKKERKEY_HOME/vaults/VAULT_ID/, where the
bootstrap script wrote it. The end-to-end test in sdk.rs runs this script and asserts on its
output. Errors the SDK raises on purpose (the ungranted secret, a plain secret read as fields)
are recorded as {"type", "message"}; any other error ends the script with a traceback.
"""

import dataclasses
import json
import sys

from sikkerkey import SikkerKey, SikkerKeyError


def raised_error(call):
    """Run call() and return the SikkerKey error it raised, or None when it succeeded."""
    try:
        call()
    except SikkerKeyError as error:
        return {"type": type(error).__name__, "message": str(error)}
    return None


def main():
    vault_id, project_id, secret_id, structured_id, denied_id = sys.argv[1:6]
    client = SikkerKey(vault_id)
    # The SDK adds the `vault_` prefix to an id given without it.
    unprefixed = SikkerKey(vault_id.removeprefix("vault_"))

    result = {
        "machineId": client.machine_id,
        "unprefixedMachineId": unprefixed.machine_id,
        "secret": client.get_secret(secret_id),
        "fields": client.get_fields(structured_id),
        "list": [dataclasses.asdict(item) for item in client.list_secrets()],
        "listByProject": [
            dataclasses.asdict(item) for item in client.list_secrets_by_project(project_id)
        ],
        "export": client.export(),
        "exportProject": client.export(project_id),
        "denied": raised_error(lambda: client.get_secret(denied_id)),
        "plainAsFields": raised_error(lambda: client.get_fields(secret_id)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
