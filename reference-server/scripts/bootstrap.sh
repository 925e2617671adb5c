#!/bin/sh
# Guardrail temporary-machine bootstrap.
#
# Generates an Ed25519 key pair on this machine, registers its public key with the server, and
# writes identity.json and private.pem under
# ${SIKKERKEY_HOME:-$HOME/.sikkerkey}/vaults/<vault id>/ (folders 700, files 600).
# The private key never leaves this machine. Any failed step stops the script and leaves no
# identity behind. Needs a POSIX sh, OpenSSL 3 and curl.
set -eu

VAULT_ID=__GUARDRAIL_VAULT_ID__
TOKEN=__GUARDRAIL_TOKEN__
API_URL=__GUARDRAIL_API_URL__

fail() {
    printf 'guardrail bootstrap: %s\n' "$*" >&2
    exit 1
}

command -v openssl >/dev/null 2>&1 || fail "openssl was not found: install OpenSSL 3 and run the command again"
command -v curl >/dev/null 2>&1 || fail "curl was not found: install curl and run the command again"

umask 077

if [ -n "${SIKKERKEY_HOME:-}" ]; then
    BASE_DIR=$SIKKERKEY_HOME
elif [ -n "${HOME:-}" ]; then
    BASE_DIR=$HOME/.sikkerkey
else
    fail "neither SIKKERKEY_HOME nor HOME is set: set one to choose where the identity goes"
fi
VAULT_DIR=$BASE_DIR/vaults/$VAULT_ID

if [ -e "$VAULT_DIR/identity.json" ] || [ -e "$VAULT_DIR/private.pem" ]; then
    fail "an identity for vault $VAULT_ID already exists in $VAULT_DIR: remove it first to register this machine again"
fi

WORK_DIR=$(mktemp -d 2>/dev/null) || fail "cannot create a temporary folder"
STAGED_KEY=
STAGED_IDENTITY=
cleanup() {
    rm -rf "$WORK_DIR"
    [ -z "$STAGED_KEY" ] || rm -f "$STAGED_KEY"
    [ -z "$STAGED_IDENTITY" ] || rm -f "$STAGED_IDENTITY"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

openssl genpkey -algorithm Ed25519 -out "$WORK_DIR/private.pem" 2>"$WORK_DIR/openssl.log" \
    || fail "openssl cannot generate an Ed25519 key (OpenSSL 3 is needed): $(head -n 3 "$WORK_DIR/openssl.log")"
openssl pkey -in "$WORK_DIR/private.pem" -pubout -outform DER -out "$WORK_DIR/public.der" 2>"$WORK_DIR/openssl.log" \
    || fail "openssl cannot extract the public key: $(head -n 3 "$WORK_DIR/openssl.log")"

# An Ed25519 SubjectPublicKeyInfo is 44 bytes: a fixed 12-byte header, then the raw key.
DER_SIZE=$(wc -c <"$WORK_DIR/public.der" | tr -d ' ')
DER_HEADER=$(od -An -tx1 -N12 "$WORK_DIR/public.der" | tr -d ' \n')
if [ "$DER_SIZE" != 44 ] || [ "$DER_HEADER" != 302a300506032b6570032100 ]; then
    fail "openssl wrote an unexpected public key encoding ($DER_SIZE bytes)"
fi
tail -c 32 "$WORK_DIR/public.der" >"$WORK_DIR/public.raw"
PUBLIC_KEY=$(openssl base64 -A -in "$WORK_DIR/public.raw") || fail "cannot base64-encode the public key"

# Keep the host name to characters that need no JSON escaping.
HOST_NAME=$( (hostname 2>/dev/null || uname -n 2>/dev/null || true) | tr -cd 'A-Za-z0-9._-' | cut -c 1-253)

# The body goes through a file so that the token does not appear in the process list.
printf '{"token":"%s","publicKey":"%s","hostname":"%s"}' "$TOKEN" "$PUBLIC_KEY" "$HOST_NAME" >"$WORK_DIR/request.json"

HTTP_STATUS=$(curl -sS -o "$WORK_DIR/response.json" -w '%{http_code}' \
    -X POST -H 'Content-Type: application/json' -H 'Accept: application/json' \
    --data-binary "@$WORK_DIR/request.json" \
    "$API_URL/v1/$VAULT_ID/temp-bootstrap/register" 2>"$WORK_DIR/curl.log") \
    || fail "cannot reach $API_URL: $(head -n 3 "$WORK_DIR/curl.log")"

RESPONSE=$(tr -d '\r\n' <"$WORK_DIR/response.json")

json_string() {
    # Prints the string value of key $1 in $RESPONSE; values with quotes or escapes are not
    # matched and so are rejected by the caller.
    printf '%s' "$RESPONSE" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"\\\\]*\)\".*/\1/p"
}

if [ "$HTTP_STATUS" != 201 ]; then
    MESSAGE=$(json_string error)
    if [ -z "$MESSAGE" ]; then
        MESSAGE=$(printf '%s' "$RESPONSE" | tr -cd '[:print:]' | cut -c 1-300)
    fi
    fail "registration failed (HTTP $HTTP_STATUS): $MESSAGE"
fi

case $RESPONSE in
    *\\*) fail "the server answered with an unexpected registration response" ;;
esac
MACHINE_ID=$(json_string machineId)
MACHINE_NAME=$(json_string machineName)
ANSWERED_VAULT=$(json_string vaultId)
ANSWERED_API_URL=$(json_string apiUrl)

printf '%s' "$MACHINE_ID" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' \
    || fail "the server answered with an invalid machineId"
[ -n "$MACHINE_NAME" ] || fail "the server answered without a machineName"
[ "$ANSWERED_VAULT" = "$VAULT_ID" ] || fail "the server answered for another vault: $ANSWERED_VAULT"
case $ANSWERED_API_URL in
    https://* | http://localhost | http://localhost:*) ;;
    *) fail "the server answered with an apiUrl that clients do not accept: $ANSWERED_API_URL" ;;
esac

mkdir -p "$VAULT_DIR" || fail "cannot create $VAULT_DIR"
chmod 700 "$BASE_DIR" "$BASE_DIR/vaults" "$VAULT_DIR" || fail "cannot restrict the permissions of $VAULT_DIR"
VAULT_DIR=$(cd "$VAULT_DIR" && pwd -P) || fail "cannot resolve $VAULT_DIR"
case $VAULT_DIR in
    *[![:print:]]*) fail "the identity folder path contains control characters: $VAULT_DIR" ;;
esac
KEY_PATH_JSON=$(printf '%s' "$VAULT_DIR/private.pem" | sed 's/\\/\\\\/g; s/"/\\"/g')

STAGED_KEY=$VAULT_DIR/.private.pem.$$
STAGED_IDENTITY=$VAULT_DIR/.identity.json.$$
cp "$WORK_DIR/private.pem" "$STAGED_KEY" || fail "cannot write the private key to $VAULT_DIR"
chmod 600 "$STAGED_KEY" || fail "cannot restrict the permissions of the private key"
printf '{\n  "machineId": "%s",\n  "machineName": "%s",\n  "vaultId": "%s",\n  "apiUrl": "%s",\n  "privateKeyPath": "%s"\n}\n' \
    "$MACHINE_ID" "$MACHINE_NAME" "$VAULT_ID" "$ANSWERED_API_URL" "$KEY_PATH_JSON" >"$STAGED_IDENTITY" \
    || fail "cannot write identity.json to $VAULT_DIR"
chmod 600 "$STAGED_IDENTITY" || fail "cannot restrict the permissions of identity.json"

if [ -e "$VAULT_DIR/identity.json" ] || [ -e "$VAULT_DIR/private.pem" ]; then
    fail "an identity for vault $VAULT_ID appeared in $VAULT_DIR meanwhile: it was left as it is"
fi
mv "$STAGED_KEY" "$VAULT_DIR/private.pem" || fail "cannot move the private key into place"
STAGED_KEY=
if ! mv "$STAGED_IDENTITY" "$VAULT_DIR/identity.json"; then
    rm -f "$VAULT_DIR/private.pem"
    fail "cannot move identity.json into place"
fi
STAGED_IDENTITY=

printf 'Registered machine %s (%s) in vault %s; it waits for approval.\n' "$MACHINE_NAME" "$MACHINE_ID" "$VAULT_ID"
printf 'Identity written to %s\n' "$VAULT_DIR"
