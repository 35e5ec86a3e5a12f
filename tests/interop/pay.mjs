// Pays one gateway call with the official x402 TypeScript client, unmodified.
//
//   node tests/interop/pay.mjs <url> <keypair.json> <rpc-url> [json-body]
//
// The signer comes from a Solana keypair file (a JSON array of 64 bytes). The SVM scheme is
// built with `rpcUrl` so the client reads the mint and a blockhash from the local cluster (over
// plain HTTP JSON-RPC) instead of the public devnet endpoint that `registerExactSvmScheme` uses.
// Prints one JSON object: { status, body, paymentResponse } where `paymentResponse` is the
// decoded PAYMENT-RESPONSE header (null when absent). Exits 1 with a message on a client error.

import { readFile } from "node:fs/promises";

import { createKeyPairSignerFromBytes } from "@solana/kit";
import { decodePaymentResponseHeader, wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";

const [url, keypairPath, rpcUrl, body = "{}"] = process.argv.slice(2);
if (!url || !keypairPath || !rpcUrl) {
  console.error("usage: node pay.mjs <url> <keypair.json> <rpc-url> [json-body]");
  process.exit(2);
}

try {
  const bytes = Uint8Array.from(JSON.parse(await readFile(keypairPath, "utf8")));
  // snippet:start
  const signer = await createKeyPairSignerFromBytes(bytes);
  const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
  const pay = wrapFetchWithPayment(fetch, client);

  const response = await pay(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  // snippet:end
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  const receipt = response.headers.get("payment-response");
  console.log(
    JSON.stringify({
      status: response.status,
      body: parsed,
      paymentResponse: receipt ? decodePaymentResponseHeader(receipt) : null,
      payer: signer.address,
    }),
  );
} catch (error) {
  console.error(`interop client failed: ${error?.stack ?? error}`);
  process.exit(1);
}
