// Buys a prepaid credits pack with the official x402 TypeScript client, unmodified: the top-up
// route is an ordinary x402 `exact` route, so the paying fetch pays it like any other call.
//
//   node tests/interop/topup.mjs <gateway-base-url> <keypair.json> <rpc-url> [pack=small]
//
// The signer and the SVM scheme are built as in pay.mjs (`rpcUrl` points the client at the local
// cluster). Prints one JSON object: { status, body, paymentResponse, payer } where `body` is the
// gateway's answer ({ wallet, pack, credits_added, balance }) and `paymentResponse` the decoded
// PAYMENT-RESPONSE header (null when absent). Exits 1 with a message on a client error.

import { readFile } from "node:fs/promises";

import { createKeyPairSignerFromBytes } from "@solana/kit";
import { decodePaymentResponseHeader, wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";

const [base, keypairPath, rpcUrl, pack = "small"] = process.argv.slice(2);
if (!base || !keypairPath || !rpcUrl) {
  console.error("usage: node topup.mjs <gateway-base-url> <keypair.json> <rpc-url> [pack]");
  process.exit(2);
}

try {
  const bytes = Uint8Array.from(JSON.parse(await readFile(keypairPath, "utf8")));
  const signer = await createKeyPairSignerFromBytes(bytes);
  const client = new x402Client().register("solana:*", new ExactSvmScheme(signer, { rpcUrl }));
  const pay = wrapFetchWithPayment(fetch, client);

  const response = await pay(new URL("/v1/credits/topup", base), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pack }),
  });
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
