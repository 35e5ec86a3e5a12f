#!/bin/sh
# Our own client (examples/pay.rs), as the README shows it.
#   sh tests/interop/pay_example.sh <url> <keypair.json> <rpc-url> <json-body>
set -eu
URL=$1 KEYPAIR=$2 RPC_URL=$3 BODY=$4
# snippet:start
cargo run --quiet --example pay -- "$URL" --keypair "$KEYPAIR" --rpc "$RPC_URL" --body "$BODY"
# snippet:end
