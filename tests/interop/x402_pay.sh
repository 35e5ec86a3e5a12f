#!/bin/sh
# Our own client, the x402-pay binary of this package (`cargo install --path .`), as the README
# shows it.
#   sh tests/interop/x402_pay.sh <url> <keypair.json> <rpc-url> <json-body>
set -eu
URL=$1 KEYPAIR=$2 RPC_URL=$3 BODY=$4
# snippet:start
x402-pay pay "$URL" --keypair "$KEYPAIR" --rpc "$RPC_URL" --body "$BODY"
# snippet:end
