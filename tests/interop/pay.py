"""Pays one gateway call with the official Python x402 client (x402 2.25.0, httpx), unmodified.

    tests/interop/.venv/bin/python tests/interop/pay.py <url> <keypair.json> <rpc-url> [json-body]

`rpc_url=` points the SVM scheme at the cluster the gateway sells for (without it the client
reads the mint and a blockhash from public devnet). Prints one JSON line like the node scripts.
"""

import asyncio
import base64
import json
import sys

from solders.keypair import Keypair
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.svm import KeypairSigner
from x402.mechanisms.svm.exact import register_exact_svm_client


async def main(url: str, keypair_path: str, rpc_url: str, body: str) -> None:
    with open(keypair_path, encoding="utf-8") as f:
        keypair = Keypair.from_bytes(bytes(json.load(f)))
    # snippet:start
    client = x402Client()
    register_exact_svm_client(client, KeypairSigner(keypair), rpc_url=rpc_url)
    async with x402HttpxClient(client, timeout=60) as http:
        response = await http.post(url, content=body, headers={"content-type": "application/json"})
    # snippet:end
    receipt = response.headers.get("payment-response")
    print(
        json.dumps(
            {
                "status": response.status_code,
                "body": response.json(),
                "paymentResponse": json.loads(base64.b64decode(receipt)) if receipt else None,
                "payer": str(keypair.pubkey()),
            }
        )
    )


if __name__ == "__main__":
    url, keypair_path, rpc_url, *rest = sys.argv[1:]
    asyncio.run(main(url, keypair_path, rpc_url, rest[0] if rest else "{}"))
